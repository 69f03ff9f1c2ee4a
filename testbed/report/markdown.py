"""report.md: the comparison table with ratios to the baseline, per-category breakdown, plot links.

    text = render_markdown(summary, plot_paths, run_dir)
"""
import os
from pathlib import Path

from testbed.report.context_audit import audit_frames, audit_warnings, is_audit_key
from testbed.report.tables import category_table, comparison_table, format_frame, sweep_table, to_markdown

METRICS_NOTE = ("Latency and throughput follow vLLM's `vllm bench serve` definitions: TTFT from the scheduled "
                "arrival to the first token; TPOT = (E2EL - TTFT) / (output tokens - 1); ITL = gaps between "
                "consecutive tokens, pooled over requests; E2EL = arrival to last token; throughput = completed "
                "requests or tokens / arm wall time. Ratios (×) are arm / baseline, measured in the same run: "
                "above 1 is better for throughput, worse for latency and memory. Failed requests score 0 in "
                "quality and are left out of latency. A blank cell means the metric does not apply.")

AUDIT_NOTE = ("Duplicate rate: share of chunks repeating an earlier one (above 0.10 a warning sign, above 0.20 "
              "almost certainly a cause of failures). Relevance: share of the delivered chunks that carry a gold "
              "fact. Min: the gold chunks' tokens. Gold position: index of the first gold chunk in the final "
              "context. Context step time is inside TTFT and E2EL.")


SWEEP_NOTE = ("Each offered rate is a full run of every arm on the same requests, sent with gamma-distributed "
              "gaps at that mean rate (inf: all at once). Goodput counts requests meeting every configured "
              "SLO per second of the arm's wall time at that rate.")


def _header(summary: dict) -> list[str]:
    lines = [f"# {summary.get('name', 'run')}", "", f"Baseline: **{summary.get('baseline')}**"]
    if summary.get("incomplete"):
        lines += ["", "**Incomplete run**: it stopped before every arm finished; figures cover what completed."]
    lines += [f"- {n}" for n in summary.get("notes") or []]
    return lines


def context_audit_markdown(summary: dict) -> list[str]:
    """The context-audit section: warning lines first, then the per-arm and per-category tables."""
    frames = audit_frames(summary)
    if frames["arm"].empty:
        return []
    lines = ["", "## Context audit", ""]
    lines += [f"- **Warning**: {w}" for w in audit_warnings(summary)] or ["- No duplicate-rate warning (all <= 0.10)."]
    lines += ["", AUDIT_NOTE, "", to_markdown(format_frame(frames["arm"]))]
    if not frames["category"].empty:
        lines += ["", "### Context audit by category", "", to_markdown(format_frame(frames["category"]))]
    return lines


def render_markdown(summary: dict, plot_paths: list[Path], run_dir: str | Path) -> str:
    lines = _header(summary)
    lines += ["", "## Comparison", "", to_markdown(comparison_table(summary)), "", METRICS_NOTE]
    sweep = sweep_table(summary)
    if not sweep.empty:
        lines += ["", "## Rate sweep", "", to_markdown(sweep), "", SWEEP_NOTE]
    cats = category_table(summary)
    cats = cats[[c for c in cats.columns if not is_audit_key(c)]] if not cats.empty else cats
    if not cats.empty:
        lines += ["", "## By category", "", to_markdown(format_frame(cats))]
    lines += context_audit_markdown(summary)
    if plot_paths:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(p).stem}]({Path(os.path.relpath(p, run_dir)).as_posix()})" for p in plot_paths]
    return "\n".join(lines) + "\n"
