"""Import every module that registers an engine, scorer, context step, proposer or router."""
import importlib

MODULES = [
    "testbed.engines.hf",
]


def load_plugins() -> None:
    for name in MODULES:
        importlib.import_module(name)
