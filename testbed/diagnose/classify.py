"""The classification: each failed request of a labelled item gets one cause, tried in this order.

- retrieval: no gold chunk reached the model (gold recall 0 in the final context; an arm without
  context steps sees the item's own chunks);
- routing: a routed request answered on a cheaper tier and the strongest tier gets the item right
  (another record of that model on the item, else a probe of the strongest tier on the same chunks);
- context: the gold chunk was there and the same model, sampling and scorer get the item right from
  the gold chunks alone (the run's own gold-only record where one exists, else a probe);
- model: none of these: clean context, right tier, still wrong.

Failures that cannot be classed are counted apart, so the counts always add up to the failures:
unlabelled (no gold labels, or the item is not in the dataset), request_error (the request itself
failed) and needs_probe (a probe was needed but not run: --no-probe, or the report's time budget).

    diag = diagnose(records, {it.id: it for it in items}, probe)   # pure: records + a probe callable
"""
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable

from testbed.context.audit import gold_carriers, gold_recall
from testbed.workloads.items import Item

CAUSES = ("retrieval", "routing", "context", "model")           # the classed failures
APART = ("needs_probe", "unlabelled", "request_error")          # counted apart
MODEL_SHARE_RULE = 0.20         # under: a systems problem
MODEL_LIMITS = 0.50             # over: the model limits quality; in between: mixed
SYSTEM_CAUSES = ("retrieval", "context", "routing")
RULE = ("Rule of thumb (among the classed failures): under 20% model errors means a systems problem "
        "(retrieval, context, routing); over 50%, the model limits quality; in between, both matter.")


@dataclass(frozen=True)
class Probe:
    """One generation the diagnosis needs: `model` answers `item_id` from `chunk_ids` alone, with `arm`'s sampling."""
    kind: str                       # gold_only (same model, gold chunks) | strongest (strongest tier, same chunks)
    arm: str
    item_id: str
    model: str
    chunk_ids: tuple[str, ...]


ProbeFn = Callable[[Probe], bool | None]     # True / False: the probe's answer was right; None: not run


def no_probe(probe: Probe) -> None:
    return None


def context_audit(rec: dict) -> dict | None:
    """The last prompt-shaping stats holding a context audit (gold recall per step), or None."""
    found = None
    for st in (rec.get("stats") or {}).values():
        if isinstance(st, dict) and "gold_recall" in st and st.get("steps"):
            found = st
    return found


def final_context(rec: dict, item: Item) -> tuple[list[str], float, str | None, bool]:
    """(ids the model saw, their gold recall, the stage where the last gold chunk went, text untouched).

    Without a context audit the model saw the item's chunks as they are.
    """
    st = context_audit(rec)
    if st is None:
        recall = gold_recall(item.chunks, item) or 0.0
        return [c.id for c in item.chunks], recall, None if recall else "retrieved", True
    steps = st["steps"]
    lost = next((s["name"] for s in steps if s.get("gold_recall") == 0), None)
    untouched = st.get("tokens_after") == st.get("tokens_gold")
    return list(steps[-1]["ids"]), st.get("gold_recall") or 0.0, lost, untouched


def is_gold_only(rec: dict, item: Item) -> bool:
    """The record's model saw every gold chunk, nothing else, and the chunks' text unchanged."""
    ids, recall, _, untouched = final_context(rec, item)
    if not ids or recall < 1 or not set(ids) <= gold_carriers(item):
        return False
    return untouched if context_audit(rec) else True


def strongest_tiers(records: Iterable[dict]) -> dict[str, tuple[int, str]]:
    """arm -> (rank, model) of the highest tier any of its routed records reached."""
    out: dict[str, tuple[int, str]] = {}
    for r in records:
        route = r.get("route")
        if route and (r["arm"] not in out or route["tier_rank"] > out[r["arm"]][0]):
            out[r["arm"]] = (route["tier_rank"], route["model"])
    return out


class Evidence:
    """The run's own answers: finished records by (item, model), for standing in for a probe."""

    def __init__(self, records: list[dict], items: dict[str, Item], settings: dict[str, Hashable] | None):
        self.items = items
        self.settings = settings
        self.by_key: dict[tuple, list[dict]] = defaultdict(list)
        for r in records:
            if r.get("status") == "ok":
                self.by_key[(r["item_id"], r.get("model"))].append(r)

    def _same_setting(self, a: str, b: str) -> bool:
        return self.settings is None or self.settings.get(a) == self.settings.get(b)

    def gold_only(self, rec: dict) -> dict | None:
        """A record of the same model and setting on the item whose context was the gold chunks alone."""
        item = self.items[rec["item_id"]]
        return next((o for o in self.by_key[(rec["item_id"], rec.get("model"))]
                     if self._same_setting(o["arm"], rec["arm"]) and is_gold_only(o, item)), None)

    def model_on_item(self, rec: dict, model: str, ids: list[str]) -> dict | None:
        """A record of `model` on the item: the same chunks first, else any, a right answer first."""
        item = self.items[rec["item_id"]]
        cands = [o for o in self.by_key[(rec["item_id"], model)] if self._same_setting(o["arm"], rec["arm"])]
        same = [o for o in cands if final_context(o, item)[0] == ids]
        pick = same or cands
        return next((o for o in pick if o.get("correct") is True), pick[0] if pick else None)


def _verdict(evidence: dict | None, probe: ProbeFn, p: Probe) -> tuple[bool | None, str]:
    if evidence is not None:
        return evidence.get("correct") is True, f"run:{evidence['arm']}"
    return probe(p), "probe"


def classify(rec: dict, item: Item | None, ev: Evidence, strongest: tuple[int, str] | None,
             probe: ProbeFn) -> dict:
    """One failed record -> a row with its cause (one of CAUSES or APART), the evidence and why."""
    row = {"arm": rec["arm"], "request_id": rec.get("request_id"), "item_id": rec["item_id"],
           "category": rec.get("category"), "model": rec.get("model")}
    if rec.get("status") != "ok":
        return {**row, "cause": "request_error", "why": rec.get("error") or "the request failed"}
    if item is None or not item.gold_chunk_ids:
        return {**row, "cause": "unlabelled", "why": "no gold chunk labels" if item else "item not in the dataset"}
    ids, recall, lost, _ = final_context(rec, item)
    row["gold_recall"] = recall
    if recall == 0:
        where = "in what was retrieved" if lost == "retrieved" else f"after step {lost}"
        return {**row, "cause": "retrieval", "evidence": "context audit", "why": f"no gold chunk {where}"}
    route = rec.get("route")
    if route and strongest and route["tier_rank"] < strongest[0]:
        p = Probe("strongest", rec["arm"], item.id, strongest[1], tuple(ids))
        ok, src = _verdict(ev.model_on_item(rec, strongest[1], ids), probe, p)
        if ok is None:
            return {**row, "cause": "needs_probe", "why": f"strongest tier {strongest[1]} not run on this item"}
        if ok:
            return {**row, "cause": "routing", "evidence": src,
                    "why": f"tier {route['tier']} failed; the strongest tier ({strongest[1]}) is right"}
    if is_gold_only(rec, item):
        return {**row, "cause": "model", "evidence": "own record", "why": "wrong with the gold chunks alone"}
    gold = tuple(dict.fromkeys(c.id for c in item.gold_chunks()))
    ok, src = _verdict(ev.gold_only(rec), probe, Probe("gold_only", rec["arm"], item.id, rec.get("model"), gold))
    if ok is None:
        return {**row, "cause": "needs_probe", "why": "gold-only probe not run"}
    if ok:
        return {**row, "cause": "context", "evidence": src, "why": "right from the gold chunks alone"}
    return {**row, "cause": "model", "evidence": src, "why": "wrong from the gold chunks alone too"}


def reading(model_share: float | None, counts: dict[str, int] | None = None) -> str:
    """The rule of thumb applied to one arm's share of model errors among its classed failures.

    In the mixed band the verdict names the largest system cause from `counts`, since that is
    where the next fix is (extractive's 21 retrieval + 15 context + 18 model errors: retrieval)."""
    if model_share is None:
        return "no classed failures"
    if model_share < MODEL_SHARE_RULE:
        return f"{model_share:.0%} model errors: a systems problem, not a model problem"
    if model_share > MODEL_LIMITS:
        return f"{model_share:.0%} model errors: the model limits quality"
    top = max(SYSTEM_CAUSES, key=lambda c: (counts or {}).get(c, 0))
    n = (counts or {}).get(top, 0)
    return (f"{model_share:.0%} model errors: mixed, the system and the model both limit quality; "
            f"the largest system cause is {top} ({n} failures)")


def arm_counts(rows: list[dict], n_requests: int) -> dict[str, Any]:
    """Counts and shares of each cause among one arm's failures; the counts add up to the failures."""
    counts = {c: sum(r["cause"] == c for r in rows) for c in (*CAUSES, *APART)}
    classed = sum(counts[c] for c in CAUSES)
    share = counts["model"] / classed if classed else None
    return {"requests": n_requests, "failures": len(rows), "counts": counts,
            "shares": {c: n / len(rows) for c, n in counts.items()} if rows else {},
            "model_share_of_classed": share, "reading": reading(share, counts)}


def diagnose(records: list[dict], items: dict[str, Item], probe: ProbeFn = no_probe,
             settings: dict[str, Hashable] | None = None,
             strongest: dict[str, tuple[int, str]] | None = None) -> dict:
    """Classify every wrong answer of every arm.

    `settings` (arm -> anything comparable: sampling, token cap) limits which arms stand in for each
    other's probes; `strongest` (arm -> (rank, model)) defaults to the highest tier seen per routed arm.
    """
    ev = Evidence(records, items, settings)
    strongest = {**strongest_tiers(records), **(strongest or {})}
    rows = [classify(r, items.get(r["item_id"]), ev, strongest.get(r["arm"]), probe)
            for r in records if r.get("correct") is False]   # None: no reference to judge by
    arms = list(dict.fromkeys(r["arm"] for r in records))
    per_arm = {a: arm_counts([r for r in rows if r["arm"] == a], sum(r["arm"] == a for r in records))
               for a in arms}
    pending = sorted({r["item_id"] for r in rows if r["cause"] == "needs_probe"})
    return {"arms": per_arm, "rows": rows, "needs_probe": pending, "rule": RULE}
