"""The context step protocol: (query, chunks) -> (chunks, stats), registered by name in STEPS.

    step = STEPS.get("dedup")(DedupStep.Options(name="dedup", threshold=0.8), lm)
    kept, stats = step("What notice is needed?", chunks)

A step keeps chunk ids on everything it returns (compression rewrites text, never ids), so an
answer stays traceable to its sources. Steps that need the item itself (the gold-only oracle)
read it from the `item` keyword; the rest ignore it. `lm` is the arm's LoadedModel; steps that
score or generate with it use it as is, others only use its tokenizer to count tokens.
"""
from typing import Any, ClassVar

from testbed.registry import Registry
from testbed.strict import Strict
from testbed.workloads.items import Chunk, Item


class StepOptions(Strict):
    """One entry of `context.steps`; each step subclasses this with its own knobs."""
    name: str


class Step:
    Options: ClassVar[type[StepOptions]] = StepOptions

    def __init__(self, options: StepOptions, lm: Any = None, where: str = "context.steps"):
        self.options = options
        self.lm = lm
        self.where = where            # YAML path of this step, for runtime errors

    def __call__(self, query: str, chunks: list[Chunk], item: Item | None = None) -> tuple[list[Chunk], dict]:
        raise NotImplementedError

    def check(self, items: list[Item], at: str, before: list["Step"]) -> None:
        """Raise UserError when this step cannot take these items (before the run); `at` is its YAML path,
        `before` the steps that run ahead of it in its list. Default: every input is fine."""


STEPS: Registry[type[Step]] = Registry("context step")
