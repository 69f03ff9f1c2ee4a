"""Comparison tables from a summary dict: one row per arm, key metrics with their ratio to the baseline.

    comparison_table(summary)       # formatted DataFrame, cells like "412.3 (×1.84)"
    summary_frame(summary)          # every flat metric as numbers, for summary.csv
    category_table(summary)         # one row per (arm, category)
    sweep_table(summary)            # one row per (arm, offered rate) of a rate sweep
    routing_table(summary)          # one row per routed arm: quality and cost against the strong tier, PGR, APGR
    to_markdown(df)
"""
import numbers

import pandas as pd

from testbed.report.ci_table import diff_text, ratio_text

# (metric key, column label); a column appears when any arm reports the metric
KEY_METRICS = (
    ("quality_accuracy", "accuracy"),
    ("output_throughput", "output tok/s"),
    ("request_throughput", "req/s"),
    ("goodput", "goodput req/s"),
    ("ttft_ms_p50", "TTFT p50 ms"),
    ("ttft_ms_p90", "TTFT p90 ms"),
    ("tpot_ms_p50", "TPOT p50 ms"),
    ("itl_ms_p90", "ITL p90 ms"),
    ("e2el_ms_p50", "E2EL p50 ms"),
    ("e2el_ms_p90", "E2EL p90 ms"),
    ("peak_memory_mb", "peak MB"),
    ("gpu_max_allocated_mb", "GPU alloc MB"),
    ("cost_per_million_output_tokens_usd", "$/M out tok"),
    ("cost_per_success_usd", "$/success"),
    ("match_rate_vs_baseline", "match vs base"),
    ("spec_acceptance_rate", "spec accept"),
    ("spec_mean_accepted_tokens", "spec tok/step"),
    ("kv_waste_pct", "KV waste %"),
    ("context_tokens_saved_pct", "ctx saved %"),
    ("duplicate_rate_after", "dup rate after"),
    ("token_share_top10pct", "top10% tok share"),
)


def fmt_number(v) -> str:
    """Readable number: thousands separators for big values, 2 decimals in between, 3 significant digits below 0.01."""
    if v is None or (isinstance(v, numbers.Real) and v != v):
        return ""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return str(v)
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.01:
        return f"{v:.2f}"
    return f"{v:.3g}" if v else "0"


def _cell(metrics: dict, key: str) -> str:
    """The value, then its ratio (or accuracy's difference) to the baseline with the 95% interval."""
    if key not in metrics:
        return ""
    text = fmt_number(metrics[key])
    if f"{key}_vs_baseline" in metrics:
        return f"{text} ({ratio_text(metrics, f'{key}_vs_baseline')})"
    if f"{key}_diff_vs_baseline" in metrics:
        return f"{text} ({diff_text(metrics, f'{key}_diff_vs_baseline')})"
    return text


def _route_keys(arms: dict) -> list[tuple[str, str]]:
    keys = sorted({k for m in arms.values() for k in m if k.startswith("route_share_")})
    return [(k, k.removeprefix("route_share_") + " share") for k in keys]


def comparison_table(summary: dict) -> pd.DataFrame:
    """Formatted strings, one row per arm (baseline first), columns for the key metrics any arm reports."""
    arms = summary["arms"]
    order = sorted(arms, key=lambda a: a != summary.get("baseline"))
    cols = [(k, label) for k, label in (*KEY_METRICS, *_route_keys(arms)) if any(k in arms[a] for a in arms)]
    rows = []
    for name in order:
        m = arms[name]
        row = {"arm": name + (" (baseline)" if name == summary.get("baseline") else ""),
               "ok": f"{m.get('n_ok', 0)}/{m.get('n_requests', 0)}"}
        row.update({label: _cell(m, k) for k, label in cols})
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def summary_frame(summary: dict) -> pd.DataFrame:
    """Every flat metric of every arm as numbers; index = arm, columns in first-seen order."""
    frame = pd.DataFrame.from_dict(summary["arms"], orient="index")
    frame.index.name = "arm"
    return frame


# (curve key, column label) of the sweep table
SWEEP_METRICS = (
    ("output_throughput", "output tok/s"),
    ("request_throughput", "req/s"),
    ("goodput", "goodput req/s"),
    ("ttft_ms_p50", "TTFT p50 ms"),
    ("ttft_ms_p90", "TTFT p90 ms"),
    ("itl_ms_p50", "ITL p50 ms"),
    ("itl_ms_p90", "ITL p90 ms"),
    ("e2el_ms_p50", "E2EL p50 ms"),
    ("e2el_ms_p90", "E2EL p90 ms"),
)


def sweep_table(summary: dict) -> pd.DataFrame:
    """Formatted strings, one row per (arm, offered rate) from summary["sweep"]; empty when not a sweep."""
    curves = (summary.get("sweep") or {}).get("curves") or {}
    rows = []
    for arm, points in curves.items():
        cols = [(k, label) for k, label in SWEEP_METRICS if any(p.get(k) is not None for p in points)]
        for p in points:
            ok = f"{p.get('n_ok') or 0}/{p.get('n_requests') or 0}"
            row = {"arm": arm, "offered req/s": str(p["rate"]), "ok": ok}
            row.update({label: fmt_number(p.get(k)) for k, label in cols})
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).fillna("").set_index(["arm", "offered req/s"])


def _pct(v) -> str:
    return "" if v is None else f"{v:.1%}"


def _usd(v) -> str:
    return "" if v is None else f"{v:.3g}"


def routing_table(summary: dict) -> pd.DataFrame:
    """One row per routed arm (summary["details"][arm]["routing"]); empty when no arm routes."""
    rows = []
    for arm, det in (summary.get("details") or {}).items():
        r = (det or {}).get("routing")
        if not r:
            continue
        m = summary["arms"].get(arm, {})
        ci = (f"[{fmt_number(m['apgr_ci_low'])}, {fmt_number(m['apgr_ci_high'])}]"
              if "apgr_ci_low" in m and "apgr_ci_high" in m else "")
        rows.append({"arm": arm, "router": r["router"], "cut": fmt_number(m.get("router_threshold")),
                     "strong share": fmt_number(m.get(f"route_share_{r['tiers'][-1]['name']}")),
                     "quality": fmt_number(r["operating_point"]["quality"]),
                     "vs strong": _pct(m.get("quality_vs_strong")),
                     "cost $": _usd(m.get("cost_usd_total")), "cost vs strong": _pct(m.get("cost_vs_strong")),
                     "same-pass cost vs strong": _pct(m.get("route_cost_vs_strong")),
                     "arm ÷ labelling": fmt_number(m.get("cost_vs_labelling")),
                     "$/success": _usd(m.get("cost_per_success_usd")), "PGR": fmt_number(m.get("pgr")),
                     "APGR": fmt_number(m.get("apgr")), "APGR 95% CI": ci,
                     "CPT(50%)": fmt_number(m.get("cpt_50")), "CPT(80%)": fmt_number(m.get("cpt_80")),
                     "escalated": fmt_number(m.get("escalation_rate")),
                     "failed self-check": fmt_number(m.get("self_check_failed_rate"))})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows).set_index("arm")
    return frame.loc[:, (frame != "").any()]


def routing_strong_arm_lines(summary: dict) -> list[str]:
    """One sentence per routed arm with a strong-tier arm in the run: quality and cost per success against it."""
    lines = []
    for arm, det in (summary.get("details") or {}).items():
        ref = ((det or {}).get("routing") or {}).get("strong_arm")
        m = summary["arms"].get(arm, {})
        if ref and "quality_vs_strong_arm" in m and "cost_per_success_vs_strong_arm" in m:
            lines.append(f"Against `{ref['arm']}` ({ref['engine']}), the strongest tier run alone in this run: {arm} "
                         f"reaches {_pct(m['quality_vs_strong_arm'])} of its quality at "
                         f"{_pct(m['cost_per_success_vs_strong_arm'])} of its cost per success.")
    return lines


def routing_tiers_line(summary: dict) -> str:
    """The labelling pass's reference points (the first routed arm's): each tier alone and the oracle."""
    for det in (summary.get("details") or {}).values():
        r = (det or {}).get("routing")
        if r:
            points = [f"{p['tier']} {fmt_number(p['quality'])} at ${_usd(p['cost_usd'])}" for p in r["tier_points"]]
            o = r["oracle"]
            return (f"Each tier alone (labelling pass, {len(r['outcomes']['item_ids'])} items): " + "; ".join(points)
                    + f"; oracle {fmt_number(o['quality'])} at ${_usd(o['cost_usd'])}.")
    return ""


def category_table(summary: dict) -> pd.DataFrame:
    """One row per (arm, category) from summary["by_category"]; empty when there is none."""
    rows = [{"arm": arm, "category": cat, **vals}
            for arm, cats in (summary.get("by_category") or {}).items() for cat, vals in cats.items()]
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["arm", "category"])


def format_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers rendered with fmt_number; strings as they are."""
    return df.apply(lambda col: col.map(fmt_number)) if not df.empty else df


def to_markdown(df: pd.DataFrame) -> str:
    """Markdown via tabulate, cells kept as formatted (no re-parsing "1.00" into 1); index levels as columns."""
    if df.empty:
        return "_(none)_"
    return df.reset_index().to_markdown(index=False, disable_numparse=True)
