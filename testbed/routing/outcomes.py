"""Per-tier outcomes on every item: the labels of the learned and oracle routers and of every sweep.

Each tier answers each item once, alone (batch of one), so its seconds are its own, after one
untimed warm-up answer per tier (on CUDA one per item: see label_tiers). The pass goes item by
item, every tier in turn, so drift in the machine's speed does not bias one tier's costs against
another's. The answers are scored as the run scores them. The caller (routing/runtime.py) keeps
each table on the experiment, keyed by the tiers, the items and the generation settings, so
several routed arms label once.

    table = label_tiers(tier_configs, items, run_one, confidence_of)
    table.correct[:, 0].mean()     # the cheapest tier's accuracy
"""
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

from testbed.metrics.quality import follows_format, score_output

@dataclass
class OutcomeTable:
    item_ids: list[str]
    categories: list[str]
    tier_names: list[str]
    correct: np.ndarray          # [n_items, n_tiers] bool
    cost_usd: np.ndarray         # [n_items, n_tiers] answering, confidence pass excluded
    confidence: np.ndarray       # [n_items, n_tiers] mean token log-prob (NaN: not measured or empty answer)
    confidence_cost_usd: np.ndarray   # [n_items, n_tiers] the confidence pass alone
    seconds: np.ndarray          # [n_items, n_tiers]
    format_ok: np.ndarray | None = None   # [n_items, n_tiers] bool: the answer gives the asked format (True: none asked)
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        if self.format_ok is None:
            self.format_ok = np.ones_like(self.correct, dtype=bool)

    @property
    def n(self) -> int:
        return len(self.item_ids)

    def quality(self, rank: int) -> float:
        return float(self.correct[:, rank].mean())

    def as_json(self) -> dict:
        return {"item_ids": self.item_ids, "tiers": self.tier_names, "correct": self.correct.tolist(),
                "cost_usd": self.cost_usd.tolist(), "seconds": self.seconds.tolist(),
                "format_ok": self.format_ok.tolist(), "confidence_cost_usd": self.confidence_cost_usd.tolist(),
                "confidence": [[None if np.isnan(v) else v for v in row] for row in self.confidence.tolist()]}


def label_tiers(tiers: list, items: list, run_one: Callable, confidence_of: Callable | None,
                where: str = "routing", progress: bool = True, warm_every_item: bool = False) -> OutcomeTable:
    """Run every tier on every item.

    Before the timed answers each tier answers the first item untimed (lazy init), or every item with
    `warm_every_item`: on CUDA each new sequence length pays kernel selection and loading once (measured
    in docs/gpu/labelling_warmup_h200.txt; an untimed prefill of each prompt does not remove it), which
    would be charged to whichever tier met that length first.

    run_one(rank, item) -> (request, text, seconds); confidence_of(rank, request) -> (value or None, seconds).
    `tiers` are TierConfig; the last tier's confidence is never needed (nothing to escalate to).
    """
    print(f"[testbed] {where}: labelling {len(items)} items on {len(tiers)} tiers (once per run, shared by the "
          "routed arms with the same tiers)", flush=True)
    n, t = len(items), len(tiers)
    correct, cost, seconds = np.zeros((n, t), bool), np.zeros((n, t)), np.zeros((n, t))
    conf, conf_cost, format_ok = np.full((n, t), np.nan), np.zeros((n, t)), np.ones((n, t), bool)
    for item in items if warm_every_item else items[:1]:     # untimed warm-up
        for j in range(t):
            run_one(j, item)
    bar = tqdm(total=n * t, desc="labelling", unit="answer", leave=True, disable=not progress)
    for i, item in enumerate(items):        # item by item, every tier in turn: a slower or faster spell of
        for j, tier in enumerate(tiers):    # the machine falls on all tiers alike, not on one tier's phase
            req, text, sec = run_one(j, item)
            tokens = req.num_prompt_tokens + req.num_output_tokens
            correct[i, j] = req.status == "finished" and bool(score_output(item, text)["correct"])
            format_ok[i, j] = follows_format(item, text) is not False
            seconds[i, j], cost[i, j] = sec, tier.cost_usd(sec, tokens)
            if confidence_of is not None and j < t - 1 and req.status == "finished":
                value, csec = confidence_of(j, req)
                conf[i, j] = np.nan if value is None else value
                conf_cost[i, j] = tier.cost_usd(csec, tokens)
            bar.update()
    bar.close()
    return OutcomeTable([it.id for it in items], [it.category for it in items], [tr.name for tr in tiers],
                        correct, cost, conf, conf_cost, seconds, format_ok)


def timed(fn: Callable, *args) -> tuple:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t
