"""The report's context-audit section: per arm and per category, with duplicate-rate and loss warnings.

    frames = audit_frames(summary)        # {"arm": DataFrame, "category": DataFrame}, empty without context arms
    lines = audit_warnings(summary)       # ["arm as_retrieved, long_noisy: duplicate rate 0.25 > 0.2: ...",
                                          #  "arm extractive, lookup: gold recall fell from 1.00 ... by step extract ..."]

Reads only the flat keys the context pipeline's `aggregate` writes (testbed/context/audit.py), in
summary["arms"] and summary["by_category"]; the generic category table leaves them to this section.
"""
import pandas as pd

from testbed.context.audit import duplicate_warning, loss_warnings, step_path

# (key, label): what reached the model against what was retrieved and the gold-only minimum
AUDIT_COLUMNS = (
    ("duplicate_rate_before", "dup rate before"),
    ("duplicate_rate_after", "dup rate after"),
    ("injected_duplicates_removed_pct", "injected dups removed %"),
    ("context_relevance", "relevance"),
    ("context_tokens_before_mean", "ctx tok before"),
    ("context_tokens_mean", "ctx tok after"),
    ("context_tokens_min_mean", "ctx tok min (gold)"),
    ("context_tokens_vs_min", "after / min"),
    ("context_tokens_saved_pct", "ctx saved %"),
    ("gold_recall", "gold recall"),
    ("gold_position_mean", "gold pos (0 = first)"),
    ("answer_in_context_rate", "answer in ctx"),
    ("gold_dropped_items", "gold dropped (requests)"),
    ("items_without_chunks", "no chunks (requests)"),
    ("context_seconds_mean", "ctx step s"),
)
AUDIT_PREFIXES = ("gold_recall_step", "answer_in_context_step")
SKIP_IN_GENERIC = {k for k, _ in AUDIT_COLUMNS} | {"context_tokens_before_mean", "gold_recall_before",
                                                   "gold_position_rel_mean", "answer_in_context_rate_before",
                                                   "answer_lost_items"}


def is_audit_key(key: str) -> bool:
    return key in SKIP_IN_GENERIC or key.startswith(AUDIT_PREFIXES)


def recall_path(metrics: dict) -> str:
    """Gold recall after each step: 'retrieved 1.00 → dedup 1.00 → rerank 0.92'."""
    if "gold_recall_before" not in metrics:
        return ""
    parts = [f"retrieved {metrics['gold_recall_before']:.2f}"]
    parts += [f"{n} {v:.2f}" for n, v in step_path(metrics, "gold_recall") if v is not None]
    return " → ".join(parts)


def _row(metrics: dict) -> dict:
    row = {label: metrics.get(key) for key, label in AUDIT_COLUMNS}
    row["gold recall by step"] = recall_path(metrics)
    return row


def audit_frames(summary: dict) -> dict[str, pd.DataFrame]:
    """Numeric audit tables per arm and per (arm, category); both empty when no arm audits its context."""
    arms = {a: m for a, m in summary.get("arms", {}).items() if "duplicate_rate_before" in m}
    if not arms:
        return {"arm": pd.DataFrame(), "category": pd.DataFrame()}
    per_arm = pd.DataFrame([{"arm": a, **_row(m)} for a, m in arms.items()]).set_index("arm")
    cats = [{"arm": a, "category": c, **_row(m)} for a, cs in (summary.get("by_category") or {}).items()
            if a in arms for c, m in cs.items() if "duplicate_rate_before" in m]
    per_cat = pd.DataFrame(cats).set_index(["arm", "category"]) if cats else pd.DataFrame()
    return {"arm": per_arm.dropna(axis=1, how="all"), "category": per_cat.dropna(axis=1, how="all")}


def _groups(summary: dict) -> list[tuple[str, str | None, dict]]:
    """(arm, category, metrics) per category where the run has per-category audits, else per arm."""
    cats = [(a, c, m) for a, cs in (summary.get("by_category") or {}).items() for c, m in cs.items()
            if "duplicate_rate_before" in m]
    return cats or [(a, None, m) for a, m in summary.get("arms", {}).items() if "duplicate_rate_before" in m]


def audit_warnings(summary: dict) -> list[str]:
    """Warning lines: the retrieved context once per category, then each arm's delivered context and its losses."""
    out, seen = [], set()
    for arm, cat, m in _groups(summary):
        where = f", {cat}" if cat else ""
        w = duplicate_warning(m.get("duplicate_rate_before"))
        if w and cat not in seen:            # every arm sees the same retrieved context
            seen.add(cat)
            out.append(f"context as retrieved{where}: {w}")
        w = duplicate_warning(m.get("duplicate_rate_after"))
        if w:
            out.append(f"arm {arm}{where}, what reached the model: {w}")
        out += [f"arm {arm}{where}: {w}" for w in loss_warnings(m)]
    return out
