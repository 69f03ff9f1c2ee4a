"""Bootstrap confidence intervals for comparing an arm with the baseline (DESIGN §4).

    ratio_ci({"r1": 1.0, "r2": 0.0, ...}, {"r1": 1.0, "r2": 1.0, ...})
    # {"estimate": 0.8, "ci_low": 0.6, "ci_high": 1.0, "n": 40, "paired": True, ...}

Samples given as {request_id: value} mappings are resampled in pairs over the ids they share
(the same request under both arms), which is what removes item difficulty from the interval;
plain sequences, or mappings sharing fewer than two ids, are resampled independently.
Percentile bootstrap with numpy, seeded, so the same inputs give the same interval.
"""
from typing import Mapping, Sequence

import numpy as np

Sample = Mapping[str, float] | Sequence[float]


def _paired(a: Sample, b: Sample) -> tuple[np.ndarray, np.ndarray] | None:
    if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return None
    ids = [k for k in a if k in b]
    if len(ids) < 2:
        return None
    return np.array([a[k] for k in ids], float), np.array([b[k] for k in ids], float)


def _values(s: Sample) -> np.ndarray:
    return np.array(list(s.values()) if isinstance(s, Mapping) else list(s), dtype=float)


def _stat(ta: np.ndarray, tb: np.ndarray, kind: str) -> np.ndarray:
    """Ratio (or difference) of means along the last axis; NaN where the baseline mean is 0."""
    ma, mb = ta.mean(axis=-1), tb.mean(axis=-1)
    if kind == "diff":
        return ma - mb
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mb != 0, ma / np.where(mb != 0, mb, 1), np.nan)


def _resample(a: np.ndarray, b: np.ndarray, paired: bool, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    ia = rng.integers(0, len(a), size=(n, len(a)))                 # [n_resamples, len(a)]
    ib = ia if paired else rng.integers(0, len(b), size=(n, len(b)))
    return a[ia], b[ib]


def ratio_ci(treatment: Sample, baseline: Sample, kind: str = "ratio", confidence: float = 0.95,
             n_resamples: int = 2000, seed: int = 0) -> dict:
    """Point estimate and percentile-bootstrap interval of mean(treatment)/mean(baseline) (or the difference).

    Returns {"estimate", "ci_low", "ci_high", "n", "paired", "kind"}; the three figures are None
    when either sample is empty or the baseline mean is 0 for a ratio.
    """
    if kind not in ("ratio", "diff"):
        raise ValueError(f"kind must be 'ratio' or 'diff', not {kind!r}")
    pair = _paired(treatment, baseline)
    a, b = pair if pair else (_values(treatment), _values(baseline))
    out = {"estimate": None, "ci_low": None, "ci_high": None, "n": int(min(len(a), len(b))),
           "paired": pair is not None, "kind": kind}
    if len(a) == 0 or len(b) == 0:
        return out
    point = float(_stat(a, b, kind))
    if np.isnan(point):
        return out
    boot = _stat(*_resample(a, b, pair is not None, n_resamples, np.random.default_rng(seed)), kind)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.nanpercentile(boot, [tail, 100 - tail])
    out.update(estimate=point, ci_low=float(lo), ci_high=float(hi))
    return out
