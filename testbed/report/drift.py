"""The report's "Order and drift" section: the order used, each arm's paired per-block throughput
ratio with its interval, the baseline's own drift over the run, and how peak memory is attributed.

    lines = drift_section(summary)     # [] for a summary without an order (older runs)
"""
from collections import Counter

from testbed.metrics.drift import PREFIX
from testbed.report.tables import fmt_number

DRIFT_NOTE = ("Paired block ratio: each arm's output throughput on a block of items divided by the baseline's on "
              "the same block; the median over blocks, with a 95% percentile-bootstrap interval (scipy). When the "
              "arms alternate, a slow change of the machine's speed hits both sides of every pair, so this ratio "
              "and the pooled one above stay put; run one after the other, the change lands on whichever arm ran "
              "then. Drift check: the baseline's own throughput over its first third of blocks against its last; "
              "across offered rates, each rate's first pass against its last, where a third of the run lies between.")

SEQUENTIAL_BLIND = (" The arms ran one after the other, so a change of the machine between one arm's pass and the "
                    "next would not show here (measured: a busy job starting with the second of two identical arms "
                    "read ×0.38, docs/drift.md).")

MEMORY_NOTE = ("Peak memory is per arm: a tracker samples the process's RSS (its child processes included) only "
               "while that arm's blocks run, and the arm keeps its highest block. RSS is process-wide, so it "
               "includes every model loaded for the run (all are loaded before the first block, in either order) "
               "and, when arms alternate, any KV pool another loaded engine holds; differences between arms are "
               "what the arm itself allocates. On CUDA the allocator peak is reset at each block in the same way.")


def _ratio_line(arm: str, row: dict) -> str | None:
    if PREFIX not in row:
        return None
    ci = (f", 95% CI [{row[PREFIX + '_ci_low']:.3f}, {row[PREFIX + '_ci_high']:.3f}]"
          if PREFIX + "_ci_low" in row else "")
    pooled = row.get("output_throughput_vs_baseline")
    pooled = f"; pooled ×{pooled:.3f}" if pooled is not None else ""
    return f"- {arm}: paired block ratio ×{row[PREFIX]:.3f}{ci} over {row.get('n_blocks_paired')} blocks{pooled}."


def _drift_line(summary: dict) -> str | None:
    d = summary.get("drift") or {}
    if d.get("not_measurable"):     # no figure rather than a ~0% that only compared neighbours
        return f"Baseline drift: not measurable for this run, because {d['not_measurable']}."
    if d.get("moved") is None:
        return None
    k = d["blocks_compared"]
    if d.get("per_rate"):       # each rate's first and last pass, over the pair's mean
        line = (f"Baseline drift (throughput at one offered rate, first pass against last, over the pair's mean; "
                f"{k} rates): {d['baseline_first']:.2f} first, {d['baseline_last']:.2f} last ({d['moved']:+.1%}).")
    else:
        line = (f"Baseline drift: {fmt_number(d['baseline_first'])} tok/s over its first {k} blocks, "
                f"{fmt_number(d['baseline_last'])} over its last {k} ({d['moved']:+.1%}).")
    sequential = (summary.get("order") or {}).get("order") == "sequential"
    if not d.get("warning"):
        within = f" Within the comparison's interval (±{d['ci_half_width']:.1%})." if "ci_half_width" in d else ""
        # the check sees the baseline only: a change that starts as another arm starts is invisible to it
        return line + within + (SEQUENTIAL_BLIND if sequential else "")
    why = ("the arms ran one after the other, so part of each ratio may be the machine, not the arm: rerun with "
           "workload.order: interleaved" if sequential else
           "the arms alternated, so the paired ratios are protected, but the absolute figures mix two machine states")
    return f"**Warning**: {line} That is more than the comparison's interval (±{d['ci_half_width']:.1%}): {why}."


def _memory_line(summary: dict) -> str | None:
    """How this run's peak memory figures were taken, from the order it used and its passes per arm."""
    passes = Counter(r["arm"] for r in summary.get("runs") or [])
    if not passes:
        return None
    n, order = max(passes.values()), (summary.get("order") or {}).get("order")
    if order == "interleaved" and n > 1:
        return (f"In this run the arms alternated ({order}), so each arm's peak memory is its highest of up to {n} "
                f"passes, taken while the engines of the arms already started stayed loaded beside it.")
    return (f"In this run each arm's passes ({n} at most) ran back to back and an arm's engine was closed before "
            f"the next arm's started, so each peak holds one arm's KV beside every loaded model's weights.")


def drift_section(summary: dict) -> list[str]:
    order = summary.get("order")
    if not order:
        return []
    base = summary.get("baseline")
    lines = [_ratio_line(a, row) for a, row in summary["arms"].items() if a != base]
    lines = [line for line in lines if line]
    drift = _drift_line(summary)
    out = ["", "## Order and drift", "", order.get("text", f"Order: **{order.get('order')}**.")]
    if lines:
        out += ["", *lines]
    if drift:
        out += ["", drift]
    memory = _memory_line(summary)
    return out + ["", DRIFT_NOTE, "", MEMORY_NOTE + (" " + memory if memory else "")]
