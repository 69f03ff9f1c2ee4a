"""The rules, cascade, random and oracle routers (learned.py holds the learned one).

Score-based routers choose between the cheapest tier (rank 0) and the strongest (the last);
the cascade climbs through every tier in order.
"""
import numpy as np

from testbed.routing.base import ROUTERS, Router
from testbed.routing.outcomes import OutcomeTable


@ROUTERS.register("rules")
class Rules(Router):
    """Strong tier when any rule matches; the score is the number of rules that match."""

    def _hits(self, item_id: str) -> int:
        f, c = self.features[item_id], self.cfg
        return (int(f.category in c.categories) + sum(f.matches(k) for k in c.keywords)
                + int(c.min_prompt_tokens is not None and f.prompt_tokens >= c.min_prompt_tokens))

    def first_tier(self, item_id: str) -> int:
        return self.n_tiers - 1 if self._hits(item_id) else 0

    def scores(self, table: OutcomeTable) -> np.ndarray:
        return np.array([self._hits(i) for i in table.item_ids], float)


@ROUTERS.register("cascade")
class Cascade(Router):
    """Every request starts on the cheapest tier and climbs while confidence < threshold or, with self_check,
    while its answer breaks the format the request asked for (a format failure outranks any confidence)."""
    needs_confidence = True
    pays_weak_first = True

    def fit(self, table: OutcomeTable) -> None:
        # strong_share / cost_budget: escalate the least confident of the labelling pass (score = -confidence)
        cut = self.calibrated_cut(table, self.scores(table))
        if cut is None:
            self.threshold = self.cfg.threshold
        else:       # escalate below -cut: just above the last item sent strong; -inf: none fits, none escalates
            self.threshold = float(np.nextafter(-cut, np.inf)) if np.isfinite(cut) else -np.inf

    def first_tier(self, item_id: str) -> int:
        return 0

    def escalate(self, rank: int, confidence: float | None, format_ok: bool = True) -> bool:
        return rank < self.n_tiers - 1 and (confidence is None or confidence < self.threshold
                                            or (self.cfg.self_check and not format_ok))

    def scores(self, table: OutcomeTable) -> np.ndarray:
        conf = table.confidence[:, 0]
        failed = np.isnan(conf) | (~table.format_ok[:, 0] if self.cfg.self_check else False)
        return np.where(failed, np.inf, -conf)     # unmeasured (failed, empty) or off-format escalates first


@ROUTERS.register("random")
class Random(Router):
    """Strong tier with probability `threshold`, seeded per item: the floor every router must beat."""

    def _draw(self, item_ids: list[str]) -> np.ndarray:
        rng = np.random.default_rng(self.cfg.seed)
        draws = dict(zip(sorted(self.features), rng.random(len(self.features))))
        return np.array([draws[i] for i in item_ids])

    def first_tier(self, item_id: str) -> int:
        return self.n_tiers - 1 if self._draw([item_id])[0] < self.cfg.threshold else 0

    def scores(self, table: OutcomeTable) -> np.ndarray:
        return -self._draw(table.item_ids)


@ROUTERS.register("oracle")
class Oracle(Router):
    """The cheapest tier that answers right (the cheapest when none does): the ceiling."""

    def fit(self, table: OutcomeTable) -> None:
        self.table = table

    def first_tier(self, item_id: str) -> int:
        right = np.flatnonzero(self.table.correct[self.table.index[item_id]])
        return int(right[0]) if right.size else 0

    def scores(self, table: OutcomeTable) -> np.ndarray:
        return (table.correct[:, -1] & ~table.correct[:, 0]).astype(float)
