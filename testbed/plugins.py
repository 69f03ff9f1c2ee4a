"""Import every module that registers an engine, scorer, context step, proposer or router."""
import importlib

MODULES = [
    "testbed.engines.hf",
    "testbed.engines.openai",
    "testbed.engines.paged.engine",
    "testbed.engines.vllm",
    "testbed.speculative.config",
    "testbed.context.retrieve",
    "testbed.context.dedup",
    "testbed.context.rerank",
    "testbed.context.compress",
    "testbed.context.budget",
    "testbed.context.oracle",
    "testbed.context.lingua",
    "testbed.context.pipeline",
    "testbed.routing.config",
]


def load_plugins() -> None:
    for name in MODULES:
        importlib.import_module(name)
