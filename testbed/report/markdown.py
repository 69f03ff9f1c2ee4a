"""report.md: the comparison table with ratios to the baseline, per-category breakdown, plot links.

    text = render_markdown(summary, plot_paths, run_dir)
"""
import os
from pathlib import Path

from testbed.report.tables import category_table, comparison_table, format_frame, sweep_table, to_markdown

METRICS_NOTE = ("Latency and throughput follow vLLM's `vllm bench serve` definitions: TTFT from the scheduled "
                "arrival to the first token; TPOT = (E2EL - TTFT) / (output tokens - 1); ITL = gaps between "
                "consecutive tokens, pooled over requests; E2EL = arrival to last token; throughput = completed "
                "requests or tokens / arm wall time. Ratios (×) are arm / baseline, measured in the same run: "
                "above 1 is better for throughput, worse for latency and memory. Failed requests score 0 in "
                "quality and are left out of latency. A blank cell means the metric does not apply.")


SWEEP_NOTE = ("Each offered rate is a full run of every arm on the same requests, sent with gamma-distributed "
              "gaps at that mean rate (inf: all at once). Goodput counts requests meeting every configured "
              "SLO per second of the arm's wall time at that rate.")


def _header(summary: dict) -> list[str]:
    lines = [f"# {summary.get('name', 'run')}", "", f"Baseline: **{summary.get('baseline')}**"]
    if summary.get("incomplete"):
        lines += ["", "**Incomplete run**: it stopped before every arm finished; figures cover what completed."]
    lines += [f"- {n}" for n in summary.get("notes") or []]
    return lines


def render_markdown(summary: dict, plot_paths: list[Path], run_dir: str | Path) -> str:
    lines = _header(summary)
    lines += ["", "## Comparison", "", to_markdown(comparison_table(summary)), "", METRICS_NOTE]
    sweep = sweep_table(summary)
    if not sweep.empty:
        lines += ["", "## Rate sweep", "", to_markdown(sweep), "", SWEEP_NOTE]
    cats = category_table(summary)
    if not cats.empty:
        lines += ["", "## By category", "", to_markdown(format_frame(cats))]
    if plot_paths:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(p).stem}]({Path(os.path.relpath(p, run_dir)).as_posix()})" for p in plot_paths]
    return "\n".join(lines) + "\n"
