"""Ratios to the baseline with their 95% intervals, as report cells and as one table of every ratio.

    ratio_text(row, "output_throughput_vs_baseline")   # "×1.84 [1.70, 1.95]*"  (* : the interval excludes 1)
    ratio_table(summary)                               # rows: every _vs_baseline metric; columns: the arms
"""
import pandas as pd

from testbed.metrics.ratio_ci import HIGH, LOW, distinguishable

MARK = "*"
CI_NOTE = ("Intervals are 95% paired bootstrap intervals (scipy, percentile, 2,000 resamples): latency over items "
           "(an item's repeats drawn with it), throughput, goodput and memory over the blocks both arms ran "
           "(time is measured per block), quality over items. `*` marks a ratio whose interval excludes 1.0 "
           "(a difference from 0 for accuracy): a difference this run can tell from noise. A ratio without an "
           "interval had too few items or blocks to draw (one block: no throughput interval).")


def _interval(row: dict, key: str, fmt: str) -> str:
    if key + LOW not in row:
        return ""
    return f" [{row[key + LOW]:{fmt}}, {row[key + HIGH]:{fmt}}]" + (MARK if distinguishable(row, key) else "")


def ratio_text(row: dict, key: str) -> str:
    """×ratio with its interval and mark; "" when the arm has no such ratio."""
    if row.get(key) is None:
        return ""
    return f"×{row[key]:.2f}" + _interval(row, key, ".2f")


def diff_text(row: dict, key: str) -> str:
    """A signed difference (quality points) with its interval and mark."""
    if row.get(key) is None:
        return ""
    return f"{row[key]:+.2f}" + _interval(row, key, "+.2f")


def rate_text(row: dict, key: str) -> str:
    """A share (match rate) with its interval, unmarked: its "×" would mislead."""
    if row.get(key) is None:
        return ""
    return f"{row[key]:.2f}" + (f" [{row[key + LOW]:.2f}, {row[key + HIGH]:.2f}]" if key + LOW in row else "")


def _text(key: str):
    return diff_text if "_diff_" in key else rate_text if key.startswith("match_rate") else ratio_text


def ratio_keys(summary: dict) -> list[str]:
    """Every _vs_baseline key any non-baseline arm reports, in first-seen order."""
    keys: dict[str, None] = {}
    for arm, row in summary["arms"].items():
        if arm != summary.get("baseline"):
            keys.update({k: None for k in row if k.endswith("_vs_baseline")})
    return list(keys)


def ratio_table(summary: dict) -> pd.DataFrame:
    """One row per ratio metric, one column per non-baseline arm: "×r [lo, hi]*" (differences signed)."""
    arms = [a for a in summary["arms"] if a != summary.get("baseline")]
    rows = []
    for key in ratio_keys(summary):
        rows.append({"metric": key.removesuffix("_vs_baseline"), **{a: _text(key)(summary["arms"][a], key) for a in arms}})
    return pd.DataFrame(rows).set_index("metric") if rows else pd.DataFrame()
