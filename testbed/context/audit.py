"""Retrieval and context audits: per request (stored in its stats) and per arm (flat summary keys).

Per request, `stage()` snapshots the chunk list after retrieval and after every step; `request_audit()`
turns the snapshots into: duplicate rate before/after (share of chunks that repeat an earlier one,
exactly or nearly), the injected duplicates still present (from the item's meta, where the dataset
labels them), context tokens before/after against the theoretical minimum (the gold chunks' tokens),
recall of the gold chunks after every step, where the first gold chunk sits in the final context,
how much of the final context is gold (relevance), and whether a reference answer survived verbatim.

A chunk "carries gold" when its id is a gold id or the meta names it a copy of one
(duplicate_of / near_duplicate_of), since keeping the best-ranked copy keeps the fact.

`aggregate(records)` pools an arm's requests into DESIGN §3 keys: duplicate_rate_before,
duplicate_rate_after, context_tokens_saved_pct, context_tokens_mean, gold_recall, gold_position_mean, ...
`loss_warnings(metrics)` reads those keys back: a step that lowered gold recall or answer-in-context
against the context as retrieved is named, with how many requests it cost.
"""
from typing import Any

import numpy as np

from testbed.context.dedup import duplicate_of
from testbed.context.text import count_tokens, normalise
from testbed.workloads.items import Chunk, Item

WARN_DUPLICATE_RATE = 0.10      # above: a warning sign
CAUSE_DUPLICATE_RATE = 0.20     # above: almost certainly why answers fail
COPY_KEYS = ("duplicate_of", "near_duplicate_of")


def copies_map(meta: dict) -> dict[str, str]:
    """chunk id -> the id it copies, from meta {duplicate_of: {...}, near_duplicate_of: {...}}."""
    out: dict[str, str] = {}
    for key in COPY_KEYS:
        val = meta.get(key) or {}
        if isinstance(val, dict):
            out.update({str(k): str(v) for k, v in val.items()})
    return out


def gold_carriers(item: Item) -> set[str]:
    gold = set(item.gold_chunk_ids)
    return gold | {c for c, src in copies_map(item.meta).items() if src in gold}


def gold_recall(chunks: list[Chunk], item: Item) -> float | None:
    """Share of the gold ids whose fact is present (the chunk or a labelled copy of it); None without gold."""
    gold = set(item.gold_chunk_ids)
    if not gold:
        return None
    copies = copies_map(item.meta)
    present = {copies.get(c.id, c.id) for c in chunks} | {c.id for c in chunks}
    return len(gold & present) / len(gold)


def gold_position(chunks: list[Chunk], item: Item) -> int | None:
    carriers = gold_carriers(item)
    return next((i for i, c in enumerate(chunks) if c.id in carriers), None)


def duplicate_count(chunks: list[Chunk], threshold: float, shingle: int) -> int:
    return sum(d is not None for d in duplicate_of(chunks, threshold=threshold, shingle=shingle))


def injected_count(chunks: list[Chunk], item: Item) -> int | None:
    """Labelled (copy, original) pairs with both chunks present; None when the item labels no copies.

    A pair counts as removed when either side goes: keeping the best-ranked copy may keep the copy.
    """
    if not any(k in item.meta for k in COPY_KEYS):
        return None
    ids = {c.id for c in chunks}
    return sum(a in ids and b in ids for a, b in copies_map(item.meta).items())


def answer_present(chunks: list[Chunk], item: Item) -> bool | None:
    """Whether some reference answer appears verbatim (normalised) in the context."""
    if not item.answers:
        return None
    text = f" {normalise(' '.join(c.text for c in chunks))} "
    return any(f" {normalise(a)} " in text for a in item.answers if normalise(a))


def stage(name: str, chunks: list[Chunk], item: Item, lm: Any, seconds: float | None = None,
          extra: dict | None = None) -> dict:
    """One snapshot of the context: its size, ids and gold recall (plus the step's own stats)."""
    out = {"name": name, "chunks": len(chunks), "tokens": sum(count_tokens(lm, [c.text for c in chunks])),
           "gold_recall": gold_recall(chunks, item), "answer_in_context": answer_present(chunks, item),
           "ids": [c.id for c in chunks]}
    if seconds is not None:
        out["seconds"] = round(seconds, 6)
    return {**out, **(extra or {})}


def request_audit(item: Item, before: list[Chunk], after: list[Chunk], stages: list[dict], lm: Any,
                  threshold: float = 0.8, shingle: int = 3) -> dict:
    """The per-request audit stored in the request's stats."""
    gold = item.gold_chunks()
    pos = gold_position(after, item)
    carriers = gold_carriers(item)
    return {
        "chunks_before": len(before), "chunks_after": len(after),
        "tokens_before": stages[0]["tokens"], "tokens_after": stages[-1]["tokens"],
        "tokens_gold": sum(count_tokens(lm, [c.text for c in {c.id: c for c in gold}.values()])),
        "duplicates_before": duplicate_count(before, threshold, shingle),
        "duplicates_after": duplicate_count(after, threshold, shingle),
        "injected_before": injected_count(before, item), "injected_after": injected_count(after, item),
        "gold_recall_before": stages[0]["gold_recall"], "gold_recall": stages[-1]["gold_recall"],
        "gold_position": pos, "gold_position_rel": None if pos is None else pos / max(len(after) - 1, 1),
        "relevance": sum(c.id in carriers for c in after) / len(after) if after and carriers else None,
        "answer_in_context_before": stages[0].get("answer_in_context"),
        "answer_in_context": answer_present(after, item),
        "no_chunks": not before,
        "steps": stages,
    }


def _mean(values: list) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def aggregate(audits: list[dict], seconds: list[float] | None = None) -> dict[str, float]:
    """Pool per-request audits into flat arm metrics; a metric without data is absent."""
    if not audits:
        return {}
    s = lambda k: sum(a.get(k) or 0 for a in audits)   # noqa: E731
    inj = [a for a in audits if a.get("injected_before") is not None]
    out = {
        "duplicate_rate_before": _ratio(s("duplicates_before"), s("chunks_before")),
        "duplicate_rate_after": _ratio(s("duplicates_after"), s("chunks_after")),
        "injected_duplicates_removed_pct": _ratio(100 * sum(a["injected_before"] - a["injected_after"] for a in inj),
                                                  sum(a["injected_before"] for a in inj)),
        "context_tokens_before_mean": _mean([a["tokens_before"] for a in audits]),
        "context_tokens_mean": _mean([a["tokens_after"] for a in audits]),
        "context_tokens_min_mean": _mean([a["tokens_gold"] for a in audits]),
        "context_tokens_saved_pct": _ratio(100 * (s("tokens_before") - s("tokens_after")), s("tokens_before")),
        "context_tokens_vs_min": _ratio(s("tokens_after"), s("tokens_gold")),
        "gold_recall_before": _mean([a["gold_recall_before"] for a in audits]),
        "gold_recall": _mean([a["gold_recall"] for a in audits]),
        "gold_position_mean": _mean([a["gold_position"] for a in audits]),
        "gold_position_rel_mean": _mean([a["gold_position_rel"] for a in audits]),
        "context_relevance": _mean([a["relevance"] for a in audits]),
        "answer_in_context_rate_before": _mean([a.get("answer_in_context_before") for a in audits]),
        "answer_in_context_rate": _mean([a["answer_in_context"] for a in audits]),
        "context_seconds_mean": _mean(seconds or []),
        "items_without_chunks": sum(bool(a.get("no_chunks")) for a in audits),
        "gold_dropped_items": sum(_lost(a, "gold_recall_before", "gold_recall") for a in audits),
        "answer_lost_items": sum(_lost(a, "answer_in_context_before", "answer_in_context") for a in audits),
    }
    out.update(step_means(audits, "gold_recall"))
    out.update(step_means(audits, "answer_in_context"))
    return {k: round(v, 6) for k, v in out.items() if v is not None}


def _lost(a: dict, before: str, after: str) -> bool:
    return a.get(before) is not None and a.get(after) is not None and float(a[after]) < float(a[before]) - 1e-9


def step_means(audits: list[dict], key: str) -> dict[str, float | None]:
    """<key>_step<i>_<name>: the mean of `key` after each step (step 0 is what was retrieved).

    Grouped by (position, name) over the requests that ran that step, so arms whose pipeline
    differs by category (context.by_category) still pool each step with its own kind."""
    groups: dict[tuple[int, str], list] = {}
    for a in audits:
        for i, st in enumerate(a["steps"][1:], 1):
            groups.setdefault((i, st["name"]), []).append(st.get(key))
    return {f"{key}_step{i}_{n}": _mean(v) for (i, n), v in sorted(groups.items())}


def step_path(metrics: dict, key: str) -> list[tuple[str, float]]:
    """[(step name, mean of `key` after it)] in pipeline order, from the flat <key>_step<i>_<name> keys."""
    prefix = f"{key}_step"
    steps = [(int(k[len(prefix):].split("_", 1)[0]), k[len(prefix):].split("_", 1)[1], v)
             for k, v in metrics.items() if k.startswith(prefix)]
    return [(n, v) for _, n, v in sorted(steps)]


LOSSES = (("gold recall", "gold_recall_before", "gold_recall", "gold_recall", "gold_dropped_items"),
          ("answer in context", "answer_in_context_rate_before", "answer_in_context_rate", "answer_in_context",
           "answer_lost_items"))


def loss_warnings(metrics: dict) -> list[str]:
    """One line per loss against the context as retrieved, naming the step(s) where it fell."""
    out = []
    for label, before_key, after_key, step_key, count_key in LOSSES:
        before, after = metrics.get(before_key), metrics.get(after_key)
        if before is None or after is None or not (after < before - 1e-9 or metrics.get(count_key)):
            continue
        prev, culprits = before, []
        for name, v in step_path(metrics, step_key):
            if v is not None and v < prev - 1e-9:
                culprits.append(f"{name} ({prev:.2f} → {v:.2f})")
            prev = v if v is not None else prev
        n = metrics.get(count_key)
        who = f" on {int(n)} request(s)" if n else ""
        out.append(f"{label} fell from {before:.2f} as retrieved to {after:.2f}{who}; lowered by step "
                   + (", ".join(culprits) or "unknown (no per-step audit)"))
    return out


def duplicate_warning(rate: float | None) -> str | None:
    """The report's reading of a duplicate rate: None below 0.10, a warning above, the likely cause above 0.20."""
    if rate is None or rate <= WARN_DUPLICATE_RATE:
        return None
    if rate > CAUSE_DUPLICATE_RATE:
        return f"duplicate rate {rate:.2f} > {CAUSE_DUPLICATE_RATE}: almost certainly a cause of failed answers"
    return f"duplicate rate {rate:.2f} > {WARN_DUPLICATE_RATE}: a warning sign; dedup the retrieved context"
