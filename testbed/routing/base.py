"""The router interface: pick the first tier for a request, say whether to escalate, score items for sweeps.

    router = ROUTERS.get("learned")(cfg, features, n_tiers)
    router.fit(table)                 # learned: cross-fit on the labelled outcomes; others: nothing to learn
    rank = router.first_tier(item_id) # 0 = the cheapest tier
    router.escalate(rank, confidence) # cascade only: run the next tier instead of answering

`scores(table)` gives every item's propensity for the strongest tier (higher = more likely sent
there); the threshold sweep behind PGR, APGR and CPT routes the top-k items strong for every k.
"""
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from testbed.registry import Registry
from testbed.routing.features import Features
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

    def cut_for_share(self, scores: np.ndarray) -> float:
        """The score cut that sends the configured strong_share of items, the highest-scored, strong.

        Reads the scores only (never the labels): RouteLLM's threshold calibration by call share.
        """
        k = max(1, round(self.cfg.strong_share * len(scores)))    # 0 < strong_share < 1, so k <= n
        return float(np.sort(scores)[-k])

    @abstractmethod
    def first_tier(self, item_id: str) -> int: ...

    def escalate(self, rank: int, confidence: float | None) -> bool:
        return False

    @abstractmethod
    def scores(self, table: OutcomeTable) -> np.ndarray:
        """[n_items] propensity for the strongest tier, in table order."""


ROUTERS: Registry[type[Router]] = Registry("router")
