"""One routed arm at run time: loaded tiers, the labelled outcomes, the fitted router, the engine.

Built when the arm is planned (before the run directory exists), so a tier that cannot load or
a cross-fitting that cannot work fails early with the YAML path. The labelling pass (every tier
on every item) runs when the first engine is built, i.e. in the untimed warm-up.
"""
import time
from typing import Any

import numpy as np

from testbed.drive import run_all
from testbed.errors import UserError
from testbed.metrics.quality import follows_format
from testbed.models import load_cached
from testbed.routing import learned, routers  # noqa: F401  (register the routers)
from testbed.routing.base import ROUTERS, Router
from testbed.routing.confidence import mean_logprob
from testbed.routing.engine import RoutedEngine, for_tier
from testbed.routing.features import item_features
from testbed.routing.outcomes import OutcomeTable, label_tiers, timed
from testbed.routing.summary import arm_details, arm_metrics
from testbed.workloads.prompts import render_prompt

class Tier:
    def __init__(self, cfg, lm, rank: int):
        self.cfg, self.lm, self.rank = cfg, lm, rank
        self.name = cfg.name


def _load(models: dict, spec, device, where: str):
    try:
        return load_cached(models, spec, device)
    except UserError as e:
        raise UserError(f"{where}.model.id: tier model cannot load: {e.message.removeprefix('model.id: ')}", e.fix) from None


class Routing:
    def __init__(self, section, plan, items: list, where: str):
        self.section, self.plan, self.items, self.where = section, plan, items, where
        device = plan.lm.device
        self.tiers = [Tier(t, _load(plan.shared.setdefault("models", {}), t.model, device, f"{where}.tiers[{i}]"), i)
                      for i, t in enumerate(section.tiers)]
        if section.router.kind == "learned":
            learned.check_enough(len(items), section.router.folds, where)
        self.by_id = {it.id: it for it in items}
        self.features = {it.id: item_features(it, len(self.render(0, plan.make_request(it, 0.0))[1])) for it in items}
        self.router: Router = ROUTERS.get(section.router.kind)(section.router, self.features, len(self.tiers))
        self.router.where = where
        self.table: OutcomeTable | None = None

    def render(self, rank: int, req) -> tuple[str, list[int]]:
        return render_prompt(self.tiers[rank].lm.tokenizer, req.messages)

    def max_new_tokens(self, rank: int, req) -> int:
        return self.tiers[rank].cfg.max_new_tokens or req.max_new_tokens

    # labelling: every tier on every item, once per run
    def _run_one(self, rank: int, item) -> tuple:
        req = for_tier(self, self.plan.make_request(item, time.perf_counter(), f"label-{item.id}"), rank)
        with self._tier_engine(rank, labelling=True) as engine:
            (_, sec) = timed(run_all, engine, [req])
        return req, self._answer(rank, req), sec

    def _answer(self, rank: int, req) -> str:
        return self.tiers[rank].lm.tokenizer.decode(req.output_ids, skip_special_tokens=True)

    def confidence(self, rank: int, req) -> tuple[float | None, float]:
        """(mean token log-prob or None, the seconds it took): from the generation where the engine kept
        the log-probs (hf: free, already inside the step's seconds), else from a teacher-forced pass."""
        logprobs = req.token_logprobs
        if logprobs is not None and len(logprobs) == req.num_output_tokens:
            return (sum(logprobs) / len(logprobs) if logprobs else None), 0.0
        return timed(mean_logprob, self.tiers[rank].lm, req.prompt_ids, req.output_ids)

    def follows_format(self, rank: int, req) -> bool | None:
        """The self-check: whether tier `rank`'s answer gives the format its request asked for (None: none asked)."""
        item = self.by_id.get(req.item_id)
        return None if item is None else follows_format(item, self._answer(rank, req))

    def _tier_engine(self, rank: int, labelling: bool = False) -> Any:
        """The labelling pass measures every lower tier's confidence whichever router labels first (the table
        is shared by the run's routed arms), so it keeps the log-probs as it generates, as a cascade arm does:
        a teacher-forced pass there would be charged to the sweep's and budget's cascade costs."""
        engine = self._engine_cls(self.tiers[rank].lm, self._options, self._sections)
        engine.record_logprobs = (labelling or self.router.needs_confidence) and rank < len(self.tiers) - 1
        return engine

    def _label(self) -> OutcomeTable:
        p = self.plan
        key = (tuple(t.cfg.model_dump_json() for t in self.tiers), tuple(it.id for it in self.items),
               p.max_new_tokens, repr(p.sampling), p.system_prompt, repr(p.arm.sections.get("context")),
               self._engine_cls.__name__, repr(self._options))
        tables = p.shared.setdefault("routing_tables", {})     # the run's routed arms with the same tiers label once
        if key not in tables:
            tables[key] = label_tiers([t.cfg for t in self.tiers], self.items, self._run_one, self.confidence,
                                      self.where, progress=p.progress, warm_every_item=p.lm.device.type == "cuda")
        return tables[key]

    # ArmPlan hooks
    def new_engine(self, engine_cls: type, options: Any, sections: dict) -> Any:
        self._engine_cls, self._options = engine_cls, options
        self._sections = {k: v for k, v in sections.items() if k != "routing"}
        if self.table is None:
            self.table = self._label()
            self.router.fit(self.table)
        engines = [self._tier_engine(rank) for rank in range(len(self.tiers))]
        return RoutedEngine(self, engines)

    def lm_for(self, req) -> Any:
        route = req.stats.get("route") or {}
        return self.tiers[route["tier_rank"]].lm if "tier_rank" in route else self.plan.lm

    def record_fields(self, req) -> dict:
        return {"route": req.stats.pop("route", None), "cost_usd": req.stats.pop("cost_usd", None)}

    def aggregate(self, records: list[dict]) -> dict:
        return arm_metrics(self, records) if self.table is not None else {}

    def details(self, records: list[dict]) -> dict:
        return arm_details(self, records) if self.table is not None else {}

    def scores(self) -> np.ndarray:
        return self.router.scores(self.table)
