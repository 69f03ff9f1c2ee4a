"""Rate sweeps: one arrival config per offered rate, and the throughput-vs-latency curve per arm.

    runs = expand_sweep({"kind": "sweep", "rates": [1, 2, "inf"], "burstiness": 1.0})
    # -> [(1.0, {"kind": "poisson", "rate": 1.0, ...}), (2.0, {...}), (inf, {"kind": "offline"})]
    curves = curve_points({rate: summary["arms"] for rate, summary in per_rate.items()})
    flat = sweep_metrics(curves["paged"])       # goodput_max, rate_at_goodput_max, ...

Each rate is a full run of every arm on the same requests (vLLM's `bench serve --request-rate`
sweep); "inf" sends everything at t=0. Goodput (requests/s meeting every SLO) comes from the
per-rate summaries, so the curve needs no records.
"""
import math
from dataclasses import asdict, dataclass

CURVE_KEYS = ("request_throughput", "output_throughput", "goodput", "ttft_ms_p50", "ttft_ms_p99",
              "tpot_ms_p50", "tpot_ms_p99", "e2el_ms_p50", "e2el_ms_p99")


@dataclass
class CurvePoint:
    rate: float                  # offered requests/s (inf = all at once)
    request_throughput: float | None = None
    output_throughput: float | None = None
    goodput: float | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p99: float | None = None
    tpot_ms_p50: float | None = None
    tpot_ms_p99: float | None = None
    e2el_ms_p50: float | None = None
    e2el_ms_p99: float | None = None


def parse_rate(rate) -> float:
    value = float(rate)          # accepts 2, 2.5, "inf"
    if not value > 0:
        raise ValueError(f"sweep rates must be positive requests/s or 'inf' (got {rate!r})")
    return value


def expand_sweep(arrival: dict) -> list[tuple[float, dict]]:
    """A sweep arrival config -> (rate, arrival config) per rate, ascending, duplicates dropped."""
    rates = arrival.get("rates") or []
    if not rates:
        raise ValueError("arrival kind sweep needs rates, e.g. {kind: sweep, rates: [1, 2, 4, inf]}")
    burst = arrival.get("burstiness", 1.0)
    out = []
    for rate in sorted({parse_rate(r) for r in rates}):
        cfg = {"kind": "offline"} if math.isinf(rate) else {"kind": "poisson", "rate": rate, "burstiness": burst}
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
