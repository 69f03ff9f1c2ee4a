"""RouteLLM's measures over a threshold sweep, with bootstrap intervals.

For a router's scores, route the k highest-scored items to the strong tier for every k = 0..n
(ties in a seeded random order), giving a curve of strong-call share, quality and cost:

    PGR  = (q_router - q_weak) / (q_strong - q_weak)      performance gap recovered
    APGR = the area under PGR against the strong-call share (0..1); random routing gives 0.5
    CPT(x) = the smallest strong-call share whose PGR reaches x (CPT(50%), CPT(80%))

    c = sweep(table, scores, pays_weak_first=False)
    apgr(c, table), cpt(c, table, 0.8), apgr_ci(table, scores, n_resamples=1000)

Quality is the share of correct answers; cost is the summed per-item cost in USD. A cascade
pays the cheapest tier (and its confidence pass) on every item, and the strong tier on top.
"""
import numpy as np

from testbed.routing.outcomes import OutcomeTable


def pgr(q: float, q_weak: float, q_strong: float) -> float | None:
    gap = q_strong - q_weak
    return None if gap <= 0 else (q - q_weak) / gap


def _order(scores: np.ndarray, seed: int) -> np.ndarray:
    tie = np.random.default_rng(seed).permutation(len(scores))
    return np.lexsort((tie, -scores))                        # highest score first, ties shuffled


def _curve(correct: np.ndarray, cost: np.ndarray, weak_extra: np.ndarray, scores: np.ndarray,
           pays_weak_first: bool, seed: int) -> dict[str, np.ndarray]:
    """correct, cost: [n, 2] (weak, strong); weak_extra: [n] the weak tier's confidence-pass cost."""
    o = _order(scores, seed)
    c, k = correct[o].astype(float), cost[o]
    n = len(o)
    gain_q = np.concatenate([[0.0], np.cumsum(c[:, 1] - c[:, 0])])                       # [n + 1]
    base_cost = k[:, 0].sum() + (weak_extra.sum() if pays_weak_first else 0.0)
    step = k[:, 1] if pays_weak_first else k[:, 1] - k[:, 0]
    return {"share": np.arange(n + 1) / n, "quality": (c[:, 0].sum() + gain_q) / n,
            "cost_usd": base_cost + np.concatenate([[0.0], np.cumsum(step)])}


def sweep(table: OutcomeTable, scores: np.ndarray, pays_weak_first: bool = False, seed: int = 0,
          idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The curve over items `idx` (all by default) between the cheapest and the strongest tier."""
    idx = np.arange(table.n) if idx is None else idx
    correct = table.correct[idx][:, [0, -1]]
    cost = table.cost_usd[idx][:, [0, -1]]
    return _curve(correct, cost, table.confidence_cost_usd[idx, 0], scores[idx], pays_weak_first, seed)


def pgr_curve(curve: dict, q_weak: float, q_strong: float) -> np.ndarray | None:
    gap = q_strong - q_weak
    return None if gap <= 0 else (curve["quality"] - q_weak) / gap


def apgr(curve: dict, q_weak: float, q_strong: float) -> float | None:
    p = pgr_curve(curve, q_weak, q_strong)
    return None if p is None else float(np.trapezoid(p, curve["share"]))


def cpt(curve: dict, q_weak: float, q_strong: float, target: float) -> float | None:
    """Smallest strong-call share reaching PGR >= target (None when the gap is not positive)."""
    p = pgr_curve(curve, q_weak, q_strong)
    if p is None:
        return None
    hit = np.flatnonzero(p >= target - 1e-12)
    return float(curve["share"][hit[0]]) if hit.size else None


def apgr_ci(table: OutcomeTable, scores: np.ndarray, pays_weak_first: bool = False, n_resamples: int = 1000,
            confidence: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap over items (scores held fixed); resamples without a positive gap are dropped."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, table.n, size=table.n)
        qw, qs = table.correct[idx, 0].mean(), table.correct[idx, -1].mean()
        a = apgr(sweep(table, scores, pays_weak_first, seed, idx), qw, qs)
        if a is not None:
            values.append(a)
    if len(values) < n_resamples // 2:
        return {"ci_low": None, "ci_high": None, "n_resamples": len(values)}
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return {"ci_low": float(lo), "ci_high": float(hi), "n_resamples": len(values)}


def oracle_point(table: OutcomeTable) -> dict:
    """Cheapest right tier per item (the cheapest when none is right): quality and total cost."""
    right = table.correct
    rank = np.where(right.any(axis=1), right.argmax(axis=1), 0)
    return {"quality": float(right.any(axis=1).mean()),
            "cost_usd": float(table.cost_usd[np.arange(table.n), rank].sum())}


def tier_points(table: OutcomeTable) -> list[dict]:
    return [{"tier": name, "quality": table.quality(j), "cost_usd": float(table.cost_usd[:, j].sum())}
            for j, name in enumerate(table.tier_names)]
