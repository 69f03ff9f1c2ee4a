"""The router interface: pick the first tier for a request, say whether to escalate, score items for sweeps.

    router = ROUTERS.get("learned")(cfg, features, n_tiers)
    router.fit(table)                 # learned: cross-fit on the labelled outcomes; others: nothing to learn
    rank = router.first_tier(item_id) # 0 = the cheapest tier
    router.escalate(rank, confidence, format_ok)   # cascade only: run the next tier instead of answering

`scores(table)` gives every item's propensity for the strongest tier (higher = more likely sent
there); the threshold sweep behind PGR, APGR and CPT routes the top-k items strong for every k.
"""
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from testbed.registry import Registry
from testbed.routing.features import Features
from testbed.routing.metrics import sweep
from testbed.routing.outcomes import OutcomeTable


class Router(ABC):
    needs_confidence = False      # the engine measures each answer's mean token log-prob when True
    pays_weak_first = False       # a cascade always pays for the cheapest tier (sweeps add its cost)

    def __init__(self, cfg: Any, features: dict[str, Features], n_tiers: int):
        self.cfg = cfg
        self.features = features
        self.n_tiers = n_tiers

    def fit(self, table: OutcomeTable) -> None:
        """Learn from the labelled per-tier outcomes (called once, before the arm runs)."""

    def calibrated_cut(self, table: OutcomeTable, scores: np.ndarray) -> float | None:
        """The score cut (items scoring >= it go strong) set by strong_share or cost_budget; None: neither.

        Reads the scores and the labelling pass's costs, never its labels: RouteLLM's calibration by
        call share, and its counterpart in money.
        """
        if self.cfg.strong_share is not None:
            k = max(1, round(self.cfg.strong_share * len(scores)))    # 0 < strong_share < 1, so k <= n
            return float(np.sort(scores)[-k])
        if self.cfg.cost_budget is not None:
            return self._cut_for_budget(table, scores)
        return None

    def _cut_for_budget(self, table: OutcomeTable, scores: np.ndarray) -> float:
        """The most highest-scored items whose routed cost stays within cost_budget × the strong tier's.

        Only cuts between distinct scores count (tied items go the same way); when not even the
        cheapest routing fits, nothing goes strong (cut = +inf).
        """
        ranked = np.sort(scores)[::-1]                                                # [n] highest first
        cost = sweep(table, scores, self.pays_weak_first)["cost_usd"]                # [n + 1]: k items strong
        limit = self.cfg.cost_budget * table.cost_usd[:, -1].sum()
        between = np.concatenate([[True], ranked[:-1] > ranked[1:], [True]])          # k = 0..n
        fits = np.flatnonzero((cost <= limit * (1 + 1e-12)) & between)
        k = int(fits[-1]) if fits.size else 0
        return float(ranked[k - 1]) if k else float("inf")

    @abstractmethod
    def first_tier(self, item_id: str) -> int: ...

    def escalate(self, rank: int, confidence: float | None, format_ok: bool = True) -> bool:
        return False

    @abstractmethod
    def scores(self, table: OutcomeTable) -> np.ndarray:
        """[n_items] propensity for the strongest tier, in table order."""


ROUTERS: Registry[type[Router]] = Registry("router")
