"""Strategy sections: one class per arm section, hooks that do nothing by default, and the registry.

An arm is `engine`, the common keys (model, sampling, max_new_tokens), engine options, and
sections: every arm key registered in SECTIONS (speculative, context, routing, ...) is validated
by its class when the config loads. ArmPlan (testbed/arm.py) calls the hooks below on each of
the arm's sections in the order the arm lists them. A new section is one class in its own
module, named in testbed/plugins.py; config, arm and runner stay as they are:

    @SECTIONS.register("prefix")
    class Prefix(Section):
        text: str
        def messages(self, messages):
            return [{"role": "system", "content": self.text}] + messages[1:]

A section with `engine_level = True` changes how tokens are made (speculative) or which engines
make them (routing): an arm runs it only on an engine that lists it in `Engine.honours`. The
others act around the engine (the prompt, the records, the summary) and run on every engine.
"""
from typing import Any, ClassVar, Protocol

from testbed.registry import Registry
from testbed.strict import Strict


class Preparer(Protocol):
    """A section's prompt-shaping step for one arm's model: an item's chunks -> the chunks the model sees.

    Its per-request stats land in record["stats"][<class name>]."""

    def prepare(self, item: Any, chunks: list) -> tuple[list, dict[str, Any]]: ...

    def check(self, items: list, arm: str) -> None:
        """Raise UserError when the workload cannot go through this step (before the run)."""


class Section(Strict):
    """One arm section's validated config and its hooks (each a no-op unless overridden)."""
    engine_level: ClassVar[bool] = False        # True: only engines that honour it run it
    bind_runs_requests: ClassVar[bool] = False  # True: bind runs requests, so `testbed validate` skips it

    def bind(self, plan: Any, items: list, where: str) -> None:
        """Plan time, before any run directory: load what the section needs, check it (plan: an ArmPlan)."""

    def preparer(self, lm: Any) -> Preparer | None:
        """The step that shapes each request's chunks as it arrives (timed in TTFT), or None."""
        return None

    def messages(self, messages: list[dict]) -> list[dict]:
        """The chat messages a request sends, given those built from the item."""
        return messages

    def check_arm(self, lm: Any, requests: list, items: list) -> None:
        """Raise UserError when the arm cannot run the workload (called from Engine.check_arm)."""

    def new_engine(self, engine_cls: type, options: Any, sections: dict[str, Any]) -> Any:
        """An engine built in place of the arm's own (a routed arm's engine over its tiers), or None."""
        return None

    def lm_for(self, req: Any) -> Any:
        """The model that produced req's output when it is not the arm's own, or None."""
        return None

    def record_fields(self, req: Any) -> dict:
        """Extra keys for req's line in requests.jsonl."""
        return {}

    def aggregate(self, records: list[dict]) -> dict[str, float]:
        """Flat summary metrics over an arm's records (or one category's)."""
        return {}

    def details(self, records: list[dict]) -> dict:
        """Non-flat per-arm results for summary["details"][arm]."""
        return {}

    def against(self, row: dict, details: dict, arms: dict, plans: dict[str, Any]) -> None:
        """Figures against the run's other arms into this arm's summary `row` and `details`.
        arms: every arm's summary row; plans: every arm's ArmPlan."""


SECTIONS: Registry[type[Section]] = Registry("arm section")
