"""report.md: the comparison table with ratios to the baseline, per-category breakdown, routing, failure diagnosis, plots.

    text = render_markdown(summary, plot_paths, run_dir)
"""
import os
from pathlib import Path

import pandas as pd

from testbed.report.ci_table import CI_NOTE, ratio_table
from testbed.report.context_audit import audit_frames, audit_warnings, is_audit_key
from testbed.report.decision import decision_lines
from testbed.report.drift import drift_section
from testbed.report.tables import (category_table, comparison_table, format_frame, routing_strong_arm_lines,
                                   routing_table, routing_tiers_line, sweep_table, to_markdown)

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


ROUTING_NOTE = ("Weak and strong figures come from the labelling pass: every tier answers every item once, alone "
                "(a batch of one), before the routed arms run. Quality and cost of a routed arm are measured in its "
                "own run; *vs strong* divides them by the strongest tier's on the labelling pass (an arm on a "
                "batching engine shares steps between requests, so its cost falls below batch-of-one costs: compare "
                "it with a strong-tier arm on the same engine). Cut: the router's threshold in force (set, or "
                "calibrated from strong_share / cost_budget without labels). *Same-pass cost vs strong* prices "
                "the arm's routes with the labelling pass's seconds on both sides (one interleaved pass: the "
                "machine's drift cancels); *arm ÷ labelling* is the arm's measured cost over those same-pass costs "
                "(above 1: the arm ran slower than the pass it is compared with). PGR = (q - q_weak) / (q_strong - "
                "q_weak); APGR = the area under PGR over the strong-call share (random routing: 0.5), with a "
                "bootstrap interval over items; CPT(x) = the strong-call share that first reaches PGR x. *Failed "
                "self-check*: a cascade's answers that were not the JSON their schema asks for (escalated however "
                "confident, unless self_check: false).")


def routing_section(summary: dict) -> list[str]:
    table = routing_table(summary)
    if table.empty:
        return []
    strong = routing_strong_arm_lines(summary)
    return ["", "## Routing", "", routing_tiers_line(summary), "", to_markdown(table), "",
            *([" ".join(strong), ""] if strong else []), ROUTING_NOTE]


DIAGNOSIS_NOTE = ("Each wrong answer of an item with gold chunk labels gets one cause: **retrieval** (no gold chunk "
                  "reached the model), **routing** (a cheaper tier failed where the strongest tier is right), "
                  "**context** (gold present, wrong, but right from the gold chunks alone with the same model), "
                  "**model** (clean context, right tier, still wrong). Failures that cannot be classed are counted "
                  "apart, so each row adds up to its wrong answers. The reading applies the rule below to the "
                  "classed failures.")
DIAGNOSIS_APART = ("needs_probe", "unlabelled", "request_error")


def diagnosis_table(diag: dict) -> pd.DataFrame:
    """One row per arm: wrong answers, each cause as "count (share)", and the rule of thumb's reading."""
    arms = diag.get("arms") or {}
    causes = ["retrieval", "routing", "context", "model"]
    causes += [c for c in DIAGNOSIS_APART if any(a["counts"].get(c) for a in arms.values())]
    rows = []
    for name, a in arms.items():
        row = {"arm": name, "wrong": f"{a['failures']}/{a['requests']}"}
        for c in causes:
            n = a["counts"].get(c, 0)
            row[c.replace("_", " ")] = f"{n} ({n / a['failures']:.0%})" if a["failures"] else "0"
        row["reading"] = a["reading"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm") if rows else pd.DataFrame()


def diagnosis_lines(diag: dict) -> list[str]:
    """The "Failure diagnosis" section's body after the table: the rule, items left unprobed, the file."""
    pending = diag.get("needs_probe") or []
    lines = [diag.get("rule", "")]
    if pending:
        shown = ", ".join(pending[:20]) + (" ..." if len(pending) > 20 else "")
        lines.append(f"Needs a probe ({len(pending)} items; `python -m testbed diagnose RUN_DIR` finishes it): "
                     f"{shown}")
    probes = diag.get("probes") or {}
    lines.append(f"Probes: {probes.get('run', 0)} run, {probes.get('cached', 0)} cached, "
                 f"{probes.get('not_run', 0)} not run. Per-request causes: {diag.get('file', 'diagnosis.json')}.")
    return lines


def diagnosis_section(diag: dict | None) -> list[str]:
    if not diag:
        return []
    lines = ["", "## Failure diagnosis", "", DIAGNOSIS_NOTE, "", to_markdown(diagnosis_table(diag))]
    for text in diagnosis_lines(diag):
        lines += ["", text]
    return lines


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
    lines += [f"- **Warning**: {w}" for w in audit_warnings(summary)] or \
        ["- No warning: duplicate rates <= 0.10, and no step lowered gold recall or answer-in-context."]
    lines += ["", AUDIT_NOTE, "", to_markdown(format_frame(frames["arm"]))]
    if not frames["category"].empty:
        lines += ["", "### Context audit by category", "", to_markdown(format_frame(frames["category"]))]
    return lines


CAPACITY_NOTE = ("The crossing reads every probe: a non-increasing (isotonic) fit of attainment vs rate, "
                 "interpolated in log rate where it crosses the target; 'not bracketed' when the fit meets at "
                 "every probe or misses at every probe. The last probe that met is the bisection's answer, "
                 "quantised to its grid (testbed/capacity.py).")


def capacity_lines(summary: dict) -> list[str]:
    """The SLO search's answer per arm (summary["capacity"]), with its plot."""
    cap = summary.get("capacity") or {}
    if not cap:
        return []
    lines = ["", "## SLO search", "", "| arm | rate where the fitted attainment crosses the target (req/s), per repeat "
             "| last probe that met (req/s), per repeat | target | probes |", "| --- | --- | --- | --- | --- |"]
    for arm, c in cap.items():
        rates = ", ".join("none in bracket" if r is None else f"{r:.3g}" for r in c["max_rate_per_repeat"])
        crossings = ", ".join("not bracketed" if r is None else f"{r:.3g}"
                              for r in c.get("rate_at_target_per_repeat", []))
        probes = sum(len(s["points"]) for s in c["searches"])
        lines.append(f"| {arm} | {crossings} | {rates} | {c['target']:.0%} | {probes} |")
    lines += ["", CAPACITY_NOTE, ""] + [f"![{arm}](plots/capacity_{arm}.png)" for arm in cap]
    return lines


def render_markdown(summary: dict, plot_paths: list[Path], run_dir: str | Path) -> str:
    lines = _header(summary) + decision_lines(summary)
    lines += ["", "## Comparison", "", to_markdown(comparison_table(summary)), "", METRICS_NOTE, "", CI_NOTE]
    ratios = ratio_table(summary)
    if not ratios.empty:
        lines += ["", "### Every ratio to the baseline, 95% CI", "", to_markdown(ratios)]
    lines += drift_section(summary)
    sweep = sweep_table(summary)
    if not sweep.empty:
        lines += ["", "## Rate sweep", "", to_markdown(sweep), "", SWEEP_NOTE]
    lines += capacity_lines(summary)
    cats = category_table(summary)
    cats = cats[[c for c in cats.columns if not is_audit_key(c)]] if not cats.empty else cats
    if not cats.empty:
        lines += ["", "## By category", "", to_markdown(format_frame(cats))]
    lines += routing_section(summary)
    lines += context_audit_markdown(summary)
    lines += diagnosis_section(summary.get("diagnosis"))
    if plot_paths:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(p).stem}]({Path(os.path.relpath(p, run_dir)).as_posix()})" for p in plot_paths]
    return "\n".join(lines) + "\n"
