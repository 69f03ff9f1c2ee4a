"""Rate sweeps: one arrival config per offered rate, and the throughput-vs-latency curve per arm.

    runs = expand_sweep({"kind": "sweep", "rates": [1, 2, "inf"], "burstiness": 1.0})
    # -> [(1.0, {"kind": "poisson", "rate": 1.0, ...}), (2.0, {...}), (inf, {"kind": "offline"})]
    curves = curve_points({rate: summary["arms"] for rate, summary in per_rate.items()})
    flat = sweep_metrics(curves["paged"])       # goodput_max, rate_at_goodput_max, ...
    summary["sweep"] = sweep_summary(per_rate)   # what the runner writes; the report reads it back

Each rate is a full run of every arm on the same requests (vLLM's `bench serve --request-rate`
sweep); "inf" sends everything at t=0. Goodput (requests/s meeting every SLO) comes from the
per-rate summaries, so the curve needs no records.
"""
import math
from dataclasses import asdict, dataclass

CURVE_KEYS = ("n_requests", "n_ok", "request_throughput", "output_throughput", "goodput",
              "ttft_ms_p50", "ttft_ms_p90", "tpot_ms_p50", "tpot_ms_p90", "itl_ms_p50", "itl_ms_p90",
              "e2el_ms_p50", "e2el_ms_p90")


@dataclass
class CurvePoint:
    rate: float                  # offered requests/s (inf = all at once)
    n_requests: int | None = None
    n_ok: int | None = None
    request_throughput: float | None = None
    output_throughput: float | None = None
    goodput: float | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p90: float | None = None
    tpot_ms_p50: float | None = None
    tpot_ms_p90: float | None = None
    itl_ms_p50: float | None = None
    itl_ms_p90: float | None = None
    e2el_ms_p50: float | None = None
    e2el_ms_p90: float | None = None


def parse_rate(rate) -> float:
    value = float(rate)          # accepts 2, 2.5, "inf"
    if not value > 0:
        raise ValueError(f"sweep rates must be positive requests/s or 'inf' (got {rate!r})")
    return value


def arrival_schedule(arrival: dict) -> list[tuple[float | None, dict]]:
    """The arrival configs one run goes through: one per rate for a sweep, else [(None, arrival)]."""
    return expand_sweep(arrival) if arrival.get("kind") == "sweep" else [(None, arrival)]


def expand_sweep(arrival: dict) -> list[tuple[float, dict]]:
    """A sweep arrival config -> (rate, arrival config) per rate, ascending, duplicates dropped.
    A concurrency sweep gives (level, closed-loop config) per level: the curve's x is then requests in flight."""
    if arrival.get("concurrency"):
        return [(float(n), {"kind": "concurrency", "n": n}) for n in sorted(set(arrival["concurrency"]))]
    rates = arrival.get("rates") or []
    if not rates:
        raise ValueError("arrival kind sweep needs rates, e.g. {kind: sweep, rates: [1, 2, 4, inf]}")
    burst = arrival.get("burstiness", 1.0)
    out = []
    for rate in sorted({parse_rate(r) for r in rates}):
        cfg = {"kind": "offline"} if math.isinf(rate) else {"kind": "poisson", "rate": rate, "burstiness": burst}
        if arrival.get("max_concurrency"):
            cfg["max_concurrency"] = arrival["max_concurrency"]
        out.append((rate, cfg))
    return out


def rate_label(rate: float) -> str:
    return "inf" if math.isinf(rate) else f"{rate:g}"


def curve_points(per_rate: dict[float, dict[str, dict]]) -> dict[str, list[CurvePoint]]:
    """{rate: {arm: flat metrics}} -> {arm: points ordered by rate}; absent metrics stay None."""
    curves: dict[str, list[CurvePoint]] = {}
    for rate in sorted(per_rate):
        for arm, metrics in per_rate[rate].items():
            curves.setdefault(arm, []).append(CurvePoint(rate, **{k: metrics.get(k) for k in CURVE_KEYS}))
    return curves


def sweep_metrics(points: list[CurvePoint]) -> dict[str, float]:
    """Flat summary of one arm's curve: best goodput and where, peak throughput."""
    out: dict[str, float] = {}
    good = [p for p in points if p.goodput is not None]
    if good:
        best = max(good, key=lambda p: p.goodput)
        out["goodput_max"] = best.goodput
        out["rate_at_goodput_max"] = best.rate
    thr = [p.output_throughput for p in points if p.output_throughput is not None]
    if thr:
        out["output_throughput_max"] = max(thr)
    return out


def curves_as_json(curves: dict[str, list[CurvePoint]]) -> dict[str, list[dict]]:
    """JSON-safe curves (inf rates as the string 'inf') for summary.json."""
    return {arm: [{**asdict(p), "rate": rate_label(p.rate)} for p in pts] for arm, pts in curves.items()}


def curves_from_json(data: dict[str, list[dict]]) -> dict[str, list[CurvePoint]]:
    """The inverse of curves_as_json (summary.json back to points); unknown keys are ignored."""
    keys = set(CURVE_KEYS)
    return {arm: [CurvePoint(parse_rate(p["rate"]), **{k: v for k, v in p.items() if k in keys}) for p in pts]
            for arm, pts in data.items()}


def sweep_summary(per_rate: dict[float, dict[str, dict]], axis: str = "rate") -> dict:
    """summary["sweep"]: the rates (or concurrency levels: axis), each arm's curve and its best points, JSON-safe."""
    curves = curve_points(per_rate)
    best = {}
    for arm, pts in curves.items():
        flat = sweep_metrics(pts)
        if "rate_at_goodput_max" in flat:
            flat["rate_at_goodput_max"] = rate_label(flat["rate_at_goodput_max"])
        best[arm] = flat
    return {"axis": axis, "rates": [rate_label(r) for r in sorted(per_rate)], "curves": curves_as_json(curves),
            "best": best}
