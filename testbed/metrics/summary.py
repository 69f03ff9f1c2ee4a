"""One arm's records -> the flat metric dict of DESIGN §3; ratios to the baseline; per-category breakdowns.

    arm = summarize_arm(records, wall_s=42.0, engine_stats={"kv_waste_pct": 3.1},
                        memory=tracker.as_metrics(), usd_per_hour=2.49, slo=cfg.slo)
    add_ratios({"plain": base, "paged": arm}, baseline="plain")   # adds output_throughput_vs_baseline, ...

A metric that does not apply is absent, not zero. Failed requests count in n_failed and score 0
in quality, but never enter latency or token means. Throughputs count completed requests over
the arm's wall time, as `vllm bench serve` does.
"""
import math
from collections import defaultdict
from typing import Callable

import numpy as np

from testbed.metrics import cost, latency
from testbed.metrics.quality import TEXT_SCORERS

LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms")
# vLLM-client definitions beside ours (docs/metrics.md); reported, not ratioed
CLIENT_KEYS = ("ttft_from_send_ms", "client_queue_ms", "e2el_from_send_ms", "itl_chunk_ms")
STAT_KEYS = ("mean", "p50", "p90", "p99")
QUALITY_SCORES = TEXT_SCORERS + ("json_valid", "json_fields")
RATIO_KEYS = (("request_throughput", "output_throughput", "total_token_throughput", "goodput")
              + tuple(f"{m}_{s}" for m in LATENCY_KEYS for s in STAT_KEYS)
              + ("peak_memory_mb", "gpu_max_allocated_mb", "nvml_used_mb"))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def put_metric(out: dict, key: str, value, finite: bool = False) -> None:
    """Set a metric only when it applies: None and NaN stay absent (and +-inf, with `finite`)."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or finite and math.isinf(value))):
        return
    out[key] = value


def _tokens(rec: dict) -> int:
    return int(rec.get("prompt_tokens") or 0) + int(rec.get("output_tokens") or 0)


def _score(rec: dict, name: str) -> float:
    return float(rec.get("scores", {}).get(name, 0.0)) if latency.is_ok(rec) else 0.0


def is_correct(rec: dict) -> bool:
    """A record that finished and was scored right."""
    return latency.is_ok(rec) and bool(rec.get("correct"))


def token_share_top(records: list[dict], fraction: float = 0.10) -> float | None:
    """Share of all tokens (prompt + output) used by the costliest `fraction` of requests."""
    tokens = sorted((_tokens(r) for r in records), reverse=True)
    total = sum(tokens)
    if not total:
        return None
    return sum(tokens[:max(1, math.ceil(fraction * len(tokens)))]) / total


def throughput_metrics(records: list[dict], wall_s: float) -> dict:
    ok = [r for r in records if latency.is_ok(r)]
    out = {"n_requests": len(records), "n_ok": len(ok), "n_failed": len(records) - len(ok), "duration_s": wall_s}
    if wall_s > 0:
        out["request_throughput"] = len(ok) / wall_s
        out["output_throughput"] = sum(r.get("output_tokens", 0) for r in ok) / wall_s
        out["total_token_throughput"] = sum(_tokens(r) for r in ok) / wall_s
    return out


def latency_metrics(records: list[dict]) -> dict:
    values = latency.latency_values(records)
    return {f"{m}_{s}": v for m in LATENCY_KEYS + CLIENT_KEYS for s, v in latency.percentiles(values[m]).items()}


def quality_values(records: list[dict]) -> dict[str, list[tuple[dict, float]]]:
    """{quality key: [(record, its value)]}: the per-request values each quality mean averages
    (bootstrap intervals resample these). Requests of items without references (correct None) are left out."""
    records = [r for r in records if r.get("correct", False) is not None]
    if not records:
        return {}
    out = {"quality_accuracy": [(r, float(is_correct(r))) for r in records]}
    for name in QUALITY_SCORES:
        scored = [r for r in records if name in TEXT_SCORERS or r.get("scorer") == "json" or name in r.get("scores", {})]
        if scored:
            out[f"quality_{name}"] = [(r, _score(r, name)) for r in scored]
    return out


def quality_metrics(records: list[dict]) -> dict:
    """quality_accuracy first (share correct), then the mean of each score; JSON scores over JSON items only.
    Requests of items without references (correct None) are not scored and not counted."""
    return {k: sum(v for _, v in pairs) / len(pairs) for k, pairs in quality_values(records).items()}


def match_rate(records: list[dict]) -> float | None:
    """Share of compared requests whose tokens equal the baseline's (records with match_baseline None are not compared)."""
    compared = [r["match_baseline"] for r in records if r.get("match_baseline") is not None]
    return sum(map(bool, compared)) / len(compared) if compared else None


def cost_metrics(records: list[dict], wall_s: float, usd_per_hour: float) -> dict:
    """$/M output tokens and $ per success, where a success is a correct answer from a completed request."""
    ok_tokens = sum(r.get("output_tokens", 0) for r in records if latency.is_ok(r))
    out: dict = {}
    put_metric(out, "cost_per_million_output_tokens_usd", cost.cost_per_million_output_tokens_usd(usd_per_hour, wall_s, ok_tokens))
    put_metric(out, "cost_per_success_usd", cost.cost_per_success_usd(usd_per_hour, wall_s, sum(map(is_correct, records))))
    return out


def summarize_arm(records: list[dict], wall_s: float, engine_stats: dict | None = None, memory: dict | None = None,
                  usd_per_hour: float = 0.0, slo=None) -> dict:
    """The flat metrics of one arm (DESIGN §3 order), engine/strategy stats merged in last."""
    ok = [r for r in records if latency.is_ok(r)]
    out = throughput_metrics(records, wall_s)
    out.update(latency_metrics(records))
    put_metric(out, "goodput", latency.goodput(records, slo, wall_s))
    for k, v in (memory or {}).items():
        put_metric(out, k, v)
    put_metric(out, "prompt_tokens_mean", _mean([r.get("prompt_tokens", 0) for r in ok]))
    put_metric(out, "output_tokens_mean", _mean([r.get("output_tokens", 0) for r in ok]))
    out.update(quality_metrics(records))
    put_metric(out, "match_rate_vs_baseline", match_rate(records))
    out.update(cost_metrics(records, wall_s, usd_per_hour))
    put_metric(out, "token_share_top10pct", token_share_top(records))
    for k, v in (engine_stats or {}).items():
        put_metric(out, k, v)
    return out


def add_ratios(arms: dict[str, dict], baseline: str) -> dict[str, dict]:
    """Add `<metric>_vs_baseline` = arm / baseline for throughputs, latency percentiles and memory (in place).

    Ratios are plain value ratios: above 1 is better for throughput, worse for latency and memory.
    The baseline gets 1.0; a metric missing on either side, or 0 on the baseline, gets no ratio.
    """
    base = arms[baseline]
    for metrics in arms.values():
        for key in RATIO_KEYS:
            if key in metrics and base.get(key):
                metrics[f"{key}_vs_baseline"] = metrics[key] / base[key]
    return arms


def shared_passes(a_runs: list, b_runs: list) -> tuple[list, list]:
    """The runs of each side whose (repeat, rate) the other side also ran."""
    keys = {(r.repeat, r.rate) for r in a_runs} & {(r.repeat, r.rate) for r in b_runs}
    return [r for r in a_runs if (r.repeat, r.rate) in keys], [r for r in b_runs if (r.repeat, r.rate) in keys]


def ratios_on_shared_passes(arms: dict[str, dict], runs: dict[str, list], baseline: str,
                            pool: Callable[[list], dict]) -> None:
    """Re-take, in place, the ratios of an arm that ran passes the baseline did not (or the reverse) from the
    passes both ran, pooled by `pool`: an SLO search probes its own rates per arm, and a ratio of rows pooled
    over different rates compares loads, not arms. Their intervals read the same passes (ratio_ci)."""
    for arm, row in arms.items():
        mine, theirs = shared_passes(runs[arm], runs[baseline])
        if len(mine) == len(runs[arm]) and len(theirs) == len(runs[baseline]):
            continue
        stale = [k for k in row if k.endswith("_vs_baseline") and k != "match_rate_vs_baseline"]
        for key in stale:
            del row[key]
        row["ratio_passes"] = len(mine)
        if mine:
            pair = add_ratios({arm: pool(mine), baseline: pool(theirs)}, baseline)
            row.update({k: pair[arm][k] for k in stale if k in pair[arm]})


def _category_row(recs: list[dict], total_tokens: int) -> dict:
    values = latency.latency_values(recs)
    row = {"n": len(recs), "n_ok": sum(map(latency.is_ok, recs)),
           "quality_accuracy": sum(map(is_correct, recs)) / len(recs)}
    put_metric(row, "ttft_ms_p90", latency.percentiles(values["ttft_ms"]).get("p90"))
    put_metric(row, "e2el_ms_p90", latency.percentiles(values["e2el_ms"]).get("p90"))
    put_metric(row, "output_tokens_mean", _mean([r.get("output_tokens", 0) for r in recs if latency.is_ok(r)]))
    if total_tokens:
        row["token_share"] = sum(map(_tokens, recs)) / total_tokens
    return row


def by_category(records: list[dict]) -> dict[str, dict]:
    """{category: {n, n_ok, quality_accuracy, ttft_ms_p90, e2el_ms_p90, output_tokens_mean, token_share}}."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r.get("category") or "uncategorised"].append(r)
    total = sum(map(_tokens, records))
    return {cat: _category_row(recs, total) for cat, recs in sorted(groups.items())}
