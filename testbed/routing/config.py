"""The `routing:` arm section: tiers (cheapest first, each a model and a price) and one router.

    arms:
      cascade:
        engine: hf                       # the engine kind every tier runs on
        routing:
          tiers:
            - {name: small, model: {id: smollm2-135m}, usd_per_hour: 0.10}
            - {name: large, model: {id: qwen2.5-coder-0.5b}, usd_per_hour: 0.10}
          router: {kind: cascade, threshold: -0.25}     # escalate when mean token log-prob < -0.25, or the
                                                        # answer fails its JSON schema (self_check: false: never)
                                                        # or {kind: cascade, strong_share: 0.3}: the 30% least confident
                                                        # or {kind: cascade, cost_budget: 0.55}: as many as fit in
                                                        #    55% of the strong tier's cost

Routers: rules (category, keywords, prompt length), learned (logistic regression, cross-fitted),
cascade (small tier first, escalate on low confidence), random and oracle. A tier's cost is its
measured seconds × usd_per_hour, or its tokens × usd_per_million_tokens.
"""
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from testbed.config import ModelSpec, NumpySeed, Strict
from testbed.routing.runtime import Routing
from testbed.routing.summary import against_strong_arm
from testbed.sections import SECTIONS, Section


class TierConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="tier name, used in route_share_<name>")
    model: ModelSpec
    usd_per_hour: float | None = Field(None, ge=0, description="device price: cost = measured seconds × this / 3600")
    usd_per_million_tokens: float | None = Field(None, ge=0, description="API price: cost = (prompt + output tokens) × this / 1e6")
    max_new_tokens: int | None = Field(None, ge=1, description="this tier's output budget; the arm's otherwise")

    @model_validator(mode="after")
    def _one_price(self):
        if (self.usd_per_hour is None) == (self.usd_per_million_tokens is None):
            raise ValueError(f"tier {self.name!r} needs exactly one price: usd_per_hour or usd_per_million_tokens")
        return self

    def cost_usd(self, seconds: float, tokens: int) -> float:
        if self.usd_per_hour is not None:
            return self.usd_per_hour * seconds / 3600.0
        return self.usd_per_million_tokens * tokens / 1e6


_BUDGET = Field(None, gt=0.0, le=1.0, description=(
    "instead of threshold: route strong as many of the highest-scored items as fit in this fraction of the strong "
    "tier's cost, both measured on the labelling pass (its costs, never its labels)"))


class _Cut(Strict):
    """A router with a score threshold, or a strong-call share or a cost budget that sets it (calibrated
    on the labelling pass without its labels, as RouteLLM calibrates by call share)."""

    @model_validator(mode="after")
    def _one_cut(self):
        given = [k for k in ("threshold", "strong_share", "cost_budget")
                 if k in self.model_fields_set and getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of threshold, strong_share or cost_budget, not {' and '.join(given)}")
        return self


class RulesRouter(Strict):
    """Strong tier when any rule matches: a category, a keyword in the question, a long prompt."""
    kind: Literal["rules"]
    categories: list[str] = Field(default_factory=list, description="categories sent to the strong tier")
    keywords: list[str] = Field(default_factory=list, description="case-insensitive words in the question")
    min_prompt_tokens: int | None = Field(None, ge=1, description="prompts at least this long go strong")


class LearnedRouter(_Cut):
    """Logistic regression on cheap features, cross-fitted: each item scored by a model that never saw it."""
    kind: Literal["learned"]
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="strong tier when P(strong helps) >= this")
    strong_share: float | None = Field(None, gt=0.0, lt=1.0, description=(
        "instead of threshold: send this share of the items, the highest-scored, to the strong tier "
        "(the cut is read off the cross-fitted scores, never off the labels)"))
    cost_budget: float | None = _BUDGET
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds")
    c: float = Field(1.0, gt=0, description="inverse regularisation strength")
    seed: NumpySeed = 0


class CascadeRouter(_Cut):
    """The cheapest tier first; escalate while its mean token log-prob is below threshold, or its answer fails
    the self-check."""
    kind: Literal["cascade"]
    threshold: float = Field(-0.25, le=0.0, ge=-20.0, description="mean token log-prob below which to escalate (<= 0)")
    strong_share: float | None = Field(None, gt=0.0, lt=1.0, description=(
        "instead of threshold: escalate this share of the items, the least confident (the cut is read off "
        "the labelling pass's confidences, never off the labels)"))
    cost_budget: float | None = _BUDGET
    self_check: bool = Field(True, description=(
        "also escalate an answer that breaks the format its request asked for (an item with a JSON schema: no JSON "
        "object, or one the schema rejects), however confident; such items count as the least confident, and "
        "escalate even where cost_budget leaves no room for them (as failed or empty answers do)"))


class RandomRouter(Strict):
    kind: Literal["random"]
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="share of requests sent to the strong tier")
    seed: NumpySeed = 0


class OracleRouter(Strict):
    """Knows every tier's outcome: the cheapest tier that answers right (the ceiling)."""
    kind: Literal["oracle"]


RouterConfig = Annotated[RulesRouter | LearnedRouter | CascadeRouter | RandomRouter | OracleRouter,
                         Field(discriminator="kind")]


@SECTIONS.register("routing")
class RoutingSection(Section):
    """`routing:` — tiers, cheapest first, and the router that picks one per request."""
    engine_level = True         # one engine of the arm's kind per tier: an engine must run it in process
    bind_runs_requests = True   # bind labels the workload with every tier: validate skips it
    tiers: list[TierConfig] = Field(min_length=2, description="two or more tiers, cheapest first")
    router: RouterConfig
    bootstrap: int = Field(1000, ge=100, le=100_000, description="resamples for the APGR interval")
    _runtime: Any = PrivateAttr(None)       # routing.runtime.Routing, built when the arm is planned

    @field_validator("tiers")
    @classmethod
    def _unique(cls, v):
        names = [t.name for t in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"tier names must be unique; repeated: {', '.join(dup)}")
        return v

    # Section hooks (testbed/sections.py): plan time, engine building, records, summary
    def bind(self, plan: Any, items: list, where: str) -> None:
        self._runtime = Routing(self, plan, items, where)

    def new_engine(self, engine_cls: type, options: Any, sections: dict) -> Any:
        return self._runtime.new_engine(engine_cls, options, sections)

    def lm_for(self, req: Any) -> Any:
        return self._runtime.lm_for(req)

    def record_fields(self, req: Any) -> dict:
        return self._runtime.record_fields(req)

    def aggregate(self, records: list[dict]) -> dict:
        return self._runtime.aggregate(records)

    def details(self, records: list[dict]) -> dict:
        return {"routing": self._runtime.details(records)}

    def against(self, row: dict, details: dict, arms: dict, plans: dict) -> None:
        if "routing" in details:
            plain = {a: (p.lm.spec_id, p.arm.engine) for a, p in plans.items() if not p.arm.sections}
            against_strong_arm(row, details["routing"], arms, plain)
