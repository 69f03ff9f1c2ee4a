"""The clean-context upper bound: keep only the item's gold chunks (what a perfect retriever returns).

    {name: gold_only}

Each gold id is kept once, in retrieved order. An item without gold_chunk_ids has no upper bound
to offer, so it is an error rather than a silently empty context; an item with no chunks at all
passes through (empty in, empty out; the audit counts it as items_without_chunks).
"""
from testbed.context.base import STEPS, Step, StepOptions
from testbed.errors import UserError


@STEPS.register("gold_only")
class GoldOnlyStep(Step):
    Options = StepOptions

    def __call__(self, query, chunks, item=None):
        if not chunks:
            return [], {"missing_gold": []}
        if item is None or not item.gold_chunk_ids:
            who = f"item {item.id}" if item else "this request"
            raise UserError(f"{self.where} (gold_only): {who} has no gold_chunk_ids",
                            "use gold_only only on datasets whose items name the chunks holding the answer")
        gold, seen, out = set(item.gold_chunk_ids), set(), []
        for c in chunks:
            if c.id in gold and c.id not in seen:
                out.append(c)
                seen.add(c.id)
        return out, {"missing_gold": sorted(gold - seen)}
