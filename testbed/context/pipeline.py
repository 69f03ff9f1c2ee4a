"""The `context:` arm section: an ordered list of steps, run on each request's chunks as it arrives.

    arms:
      dedup_rerank:
        engine: hf
        context:
          steps:
            - {name: dedup}
            - {name: rerank, method: bm25, top_n: 4}
          audit: {threshold: 0.7, shingle: 1}      # what the duplicate-rate audit counts as a copy
      compress_long_only:
        context:
          steps: []                                # the default: categories not listed below
          by_category:                             # a pipeline per item category
            long_noisy: [{name: dedup}, {name: extract, ratio: 0.3}]

An empty `steps: []` changes nothing and only audits (the baseline's "context as retrieved").
`by_category` maps an item category to its own step list, used instead of `steps` for that
category's items (so a bench can compress only where the context is long); a category the
workload does not hold (a limit, a split) is simply unused.
Step options are validated by each step's Options class at config load, with errors at their
YAML path (arms.<arm>.context.steps[1].budget_tokens). The section's preparer, a ContextPipeline,
stores the audit in the request's stats (record["stats"]["ContextPipeline"]); the section pools
it per arm in `aggregate`.
"""
import time
from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from testbed.context import audit
from testbed.context.base import STEPS, StepOptions
from testbed.errors import UserError
from testbed.sections import SECTIONS, Section
from testbed.workloads.items import Chunk, Item


class AuditOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(0.7, gt=0.0, le=1.0, description="shingle Jaccard that counts as a near-duplicate")
    shingle: int = Field(1, ge=1, le=16, description="words per shingle")


@SECTIONS.register("context")
class ContextSection(Section):
    """`context:` — steps run in order (retrieve, dedup, rerank, extract, prune, budget, gold_only)."""
    steps: list[StepOptions] = Field(default_factory=list)
    by_category: dict[str, list[StepOptions]] = Field(default_factory=dict,
                                                      description="category -> its own steps, instead of `steps`")
    audit: AuditOptions = AuditOptions()

    def preparer(self, lm: Any) -> "ContextPipeline":
        return ContextPipeline(self, lm)

    def aggregate(self, records: list[dict]) -> dict[str, float]:
        return ContextPipeline.aggregate(records)

    def details(self, records: list[dict]) -> dict:
        """summary["details"][arm]["context_warnings"]: each category's losses against the context as retrieved."""
        by_cat: dict[str, list[dict]] = {}
        for r in records:
            by_cat.setdefault(r.get("category") or "uncategorised", []).append(r)
        warns = [f"{cat}: {w}" for cat, rs in sorted(by_cat.items())
                 for w in audit.loss_warnings(ContextPipeline.aggregate(rs))]
        return {"context_warnings": warns} if warns else {}

    @classmethod
    def model_validate(cls, obj: Any, **kw) -> "ContextSection":
        """Validate every step by its own Options class; errors carry the path steps[i].<key>
        (by_category.<category>[i].<key>)."""
        if not isinstance(obj, dict) or not isinstance(obj.get("steps", []), list) \
                or not isinstance(obj.get("by_category", {}), dict):
            return super().model_validate(obj, **kw)
        strict = kw.get("strict")       # config.validate's strict=True reaches each step's options too
        steps, errors = _validate_steps(obj.get("steps", []), ("steps",), strict)
        by_cat = {}
        for cat, raws in (obj.get("by_category") or {}).items():
            if not isinstance(raws, list):
                errors.append(_error(("by_category", str(cat)), "a list of steps, e.g. [{name: dedup}]", raws))
                continue
            by_cat[cat], errs = _validate_steps(raws, ("by_category", str(cat)), strict)
            errors += errs
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return super().model_validate({**obj, "steps": steps, "by_category": by_cat}, **kw)


def _error(loc: tuple, msg: str, value: Any = None) -> dict:
    return {"type": PydanticCustomError("context_step", "{msg}", {"msg": msg}), "loc": loc, "input": value}


def _validate_steps(raws: list, where: tuple[str, ...], strict: bool | None = None) -> tuple[list, list[dict]]:
    steps, errors = [], []
    for i, raw in enumerate(raws):
        opts, errs = _validate_step(where[:-1] + (f"{where[-1]}[{i}]",), raw, strict)
        steps.append(opts)
        errors += errs
    return steps, errors


def _validate_step(at: tuple[str, ...], raw: Any, strict: bool | None = None) -> tuple[StepOptions | None, list[dict]]:
    if not isinstance(raw, dict) or "name" not in raw:
        return None, [_error(at, f"a step needs a name, one of: {', '.join(STEPS.names())}")]
    if raw["name"] not in STEPS:
        near = get_close_matches(str(raw["name"]), STEPS.names(), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return None, [_error(at + ("name",), f"unknown context step{hint}; use one of: {', '.join(STEPS.names())}",
                             raw["name"])]
    options = STEPS.get(raw["name"]).Options
    try:
        return options.model_validate(raw, strict=strict), []
    except ValidationError as e:
        return None, [_error(at + tuple(map(str, err["loc"])), f"{raw['name']} step: {_message(err, options)}",
                             err.get("input")) for err in e.errors()]


def _message(err: dict, options: type[BaseModel]) -> str:
    if err["type"] == "extra_forbidden":
        near = get_close_matches(str(err["loc"][-1]), list(options.model_fields), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"unknown key{hint}; this step takes: {', '.join(options.model_fields)}"
    return err["msg"].removeprefix("Value error, ")


def check_chunk_ids(item: Item, chunks: list[Chunk]) -> None:
    for i, c in enumerate(chunks):
        if not isinstance(c.id, str) or not c.id.strip():
            raise UserError(f"item {item.id}: chunks[{i}] has no id (context steps and audits track chunks by id)",
                            "give every chunk a unique non-empty id in the dataset")


class ContextPipeline:
    """Runs the section's steps on an item's chunks; returns what the model sees and the audit."""

    def __init__(self, section_cfg: ContextSection, lm: Any):
        self.cfg = section_cfg
        self.lm = lm
        self.steps = self._build(section_cfg.steps, "context.steps")
        self.by_category = {cat: self._build(opts, f"context.by_category.{cat}")
                            for cat, opts in section_cfg.by_category.items()}

    def _build(self, options: list[StepOptions], where: str) -> list:
        return [STEPS.get(o.name)(o, self.lm, where=f"{where}[{i}]") for i, o in enumerate(options)]

    def steps_for(self, item: Item) -> list:
        """The item's category's own steps where by_category names it, else the default `steps`."""
        return self.by_category.get(item.category, self.steps)

    def prepare(self, item: Item, chunks: list[Chunk]) -> tuple[list[Chunk], dict[str, Any]]:
        check_chunk_ids(item, chunks)
        before = list(chunks)
        stages = [audit.stage("retrieved", before, item, self.lm)]
        for step in self.steps_for(item):
            t = time.perf_counter()
            chunks, st = step(item.question, chunks, item=item)
            stages.append(audit.stage(step.options.name, chunks, item, self.lm, time.perf_counter() - t, st))
        a = self.cfg.audit
        return chunks, audit.request_audit(item, before, chunks, stages, self.lm, a.threshold, a.shingle)

    def check(self, items: list[Item], arm: str) -> None:
        """Pre-run check of this arm's steps against the dataset: every bad input as a UserError before any request.

        Chunks need ids; a `retrieve` without a corpus needs the item's own chunks; a `budget` must
        leave room for the longest question of the items each step list will see.
        Called for every context arm before the run (ArmPlan.check, from Experiment._check_arms).
        """
        for item in items:
            check_chunk_ids(item, item.chunks)
        for cat, steps in self.by_category.items():   # a category absent here (a limit, a split) is unused
            _check_steps(steps, [it for it in items if it.category == cat], f"arms.{arm}.context.by_category.{cat}")
        _check_steps(self.steps, [it for it in items if it.category not in self.by_category],
                     f"arms.{arm}.context.steps")

    @classmethod
    def aggregate(cls, records: list[dict]) -> dict[str, float]:
        stats = [r["stats"][cls.__name__] for r in records if cls.__name__ in (r.get("stats") or {})]
        return audit.aggregate(stats, [s["seconds"] for s in stats if "seconds" in s])


def _check_steps(steps: list, items: list[Item], where: str) -> None:
    """The pre-run checks of one step list against the items it will see (ContextPipeline.check)."""
    for i, step in enumerate(steps):
        step.check(items, f"{where}[{i}]", steps[:i])
