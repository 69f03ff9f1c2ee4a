"""Paired per-block throughput ratios and the baseline's drift over the run.

    per_arm, drift = drift_summary(exp.runs, baseline="plain")
    per_arm["paged"]   # {"output_throughput_block_ratio": 1.84, "..._ci_low": 1.7, "..._ci_high": 1.9, "n_blocks_paired": 12}
    drift              # {"baseline_first": 410.2, "baseline_last": 371.9, "moved": -0.093, "ci_half_width": 0.04, "warning": True, ...}

A block is one arm's pass over one block of items (or one repeat/rate of an arrival-driven
workload), see testbed/schedule.py. Arms that ran the same block are paired: their output
throughput ratio on that block is free of the machine's slow drift when the arms alternate. The
interval is scipy's percentile bootstrap of the median ratio over blocks. The drift check compares
the baseline's own throughput over its first third of blocks with its last third (in run order):
if it moved more than the comparison's interval is wide, a sequential order would have put that
movement into the ratios.

Across offered rates (a sweep, an SLO search) throughput follows the rate, so only passes at the same
rate compare: each rate's first pass against its last, counted where at least a third of the
baseline's passes ran between them. Closer pairs saw the same machine (an SLO search in lockstep
probes a rate's repeats in the same round) and would read ~0% whatever the machine did over the run,
so a run without a distant pair gets `not_measurable` (why) instead of a figure.
"""
import math

import numpy as np
from scipy.stats import bootstrap

from testbed.metrics import latency

PREFIX = "output_throughput_block_ratio"


def _key(run) -> tuple:
    return (run.repeat, run.rate, run.block)


def block_throughputs(runs: list) -> dict[tuple, float]:
    """{(repeat, rate, block): output tokens of completed requests / the block's wall time}."""
    out = {}
    for run in runs:
        if run.wall_s > 0:
            out[_key(run)] = sum(r.get("output_tokens", 0) for r in run.records if latency.is_ok(r)) / run.wall_s
    return out


def median_ci(values: list[float], confidence: float = 0.95, seed: int = 0) -> tuple[float, float | None, float | None]:
    """Median and its percentile-bootstrap interval (None with fewer than 2 values or no spread)."""
    data = np.asarray(values, float)
    med = float(np.median(data))
    if len(data) < 2 or np.ptp(data) == 0:
        return med, (med if len(data) >= 2 else None), (med if len(data) >= 2 else None)
    res = bootstrap((data,), np.median, confidence_level=confidence, method="percentile",
                    n_resamples=2000, random_state=np.random.default_rng(seed))
    return med, float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_ratio(arm: dict[tuple, float], base: dict[tuple, float]) -> dict:
    """The arm's per-block throughput over the baseline's on the same blocks: median, CI, pairs."""
    ratios = [arm[k] / base[k] for k in arm if k in base and base[k] > 0]
    if not ratios:
        return {}
    med, lo, hi = median_ci(ratios)
    out = {PREFIX: med, "n_blocks_paired": len(ratios)}
    if lo is not None:
        out.update({f"{PREFIX}_ci_low": lo, f"{PREFIX}_ci_high": hi})
    return out


def baseline_drift(runs: list) -> dict:
    """The baseline's output throughput over its first and last thirds of blocks, in the order they ran;
    across offered rates, each rate's first pass against its last (`per_rate_drift`)."""
    thr = block_throughputs(runs)
    ordered = [r for r in sorted(runs, key=lambda r: r.started) if _key(r) in thr]
    if len({r.rate for r in ordered}) > 1:
        return per_rate_drift(ordered, thr)
    series = [thr[_key(r)] for r in ordered]
    if len(series) < 2:
        return {}
    k = max(1, math.floor(len(series) / 3))
    first, last = float(np.mean(series[:k])), float(np.mean(series[-k:]))
    return {"baseline_blocks": len(series), "blocks_compared": k, "baseline_first": first, "baseline_last": last,
            "moved": last / first - 1 if first > 0 else None, "per_rate": False}


def rate_pairs(ordered: list, thr: dict) -> tuple[list[tuple[float, float]], int]:
    """(first, last) throughput of every rate whose first and last pass lie at least a third of the
    baseline's passes apart (positions in run order), and the widest such gap of any rate run twice."""
    at: dict = {}
    for i, run in enumerate(ordered):
        at.setdefault(run.rate, []).append(i)
    gaps = {rate: pos[-1] - pos[0] for rate, pos in at.items() if len(pos) > 1}
    pairs = [(thr[_key(ordered[at[rate][0]])], thr[_key(ordered[at[rate][-1]])])
             for rate, gap in gaps.items() if gap >= len(ordered) / 3]
    return pairs, max(gaps.values(), default=0)


def per_rate_drift(ordered: list, thr: dict) -> dict:
    """Each pair's throughputs over the pair's mean (so every rate weighs alike), averaged: first vs last."""
    distant, widest = rate_pairs(ordered, thr)
    pairs = [(a, b) for a, b in distant if a + b > 0]
    if not pairs:
        if widest == 0:
            why = f"the baseline ran each offered rate once ({len(ordered)} passes) and its throughput follows the rate"
        elif distant:
            why = "the baseline completed no tokens in its distant passes at one rate"
        else:
            why = (f"the baseline's passes at any one rate lie at most {widest} apart in its {len(ordered)} passes "
                   f"(an SLO search in lockstep probes a rate's repeats in the same round), so each pair saw one "
                   f"machine state; a pair needs a third of the run between its passes")
        return {"per_rate": True, "baseline_blocks": len(ordered), "not_measurable": why}
    first = float(np.mean([2 * a / (a + b) for a, b in pairs]))
    last = float(np.mean([2 * b / (a + b) for a, b in pairs]))
    return {"baseline_blocks": 2 * len(pairs), "blocks_compared": len(pairs), "baseline_first": first,
            "baseline_last": last, "moved": last / first - 1 if first > 0 else None, "per_rate": True}


def drift_summary(runs: dict[str, list], baseline: str) -> tuple[dict[str, dict], dict]:
    """Per-arm paired block ratios to the baseline, and the drift check (empty when there is nothing to pair)."""
    if baseline not in runs:
        return {}, {}
    base = block_throughputs(runs[baseline])
    per_arm = {a: paired_ratio(block_throughputs(rs), base) for a, rs in runs.items() if a != baseline}
    per_arm = {a: v for a, v in per_arm.items() if v}
    drift = baseline_drift(runs[baseline])
    widths = [(v[f"{PREFIX}_ci_high"] - v[f"{PREFIX}_ci_low"]) / 2 / v[PREFIX]    # relative, like `moved`
              for v in per_arm.values() if f"{PREFIX}_ci_low" in v and v[PREFIX] > 0]
    if drift.get("moved") is not None and widths:
        drift["ci_half_width"] = max(widths)
        drift["warning"] = abs(drift["moved"]) > drift["ci_half_width"]
    return per_arm, drift


def add_block_ratios(arms: dict[str, dict], runs: dict[str, list], baseline: str) -> dict:
    """Each arm's paired block ratio into its summary row (in place); returns the drift check for summary["drift"]."""
    per_arm, drift = drift_summary(runs, baseline)
    for arm, row in per_arm.items():
        arms[arm].update(row)
    return drift
