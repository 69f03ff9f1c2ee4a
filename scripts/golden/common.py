"""Shared pieces of the golden-set generator: item records, chunks, token estimates, name pools.

A `Fact` is one question whose answer sits in one templated chunk. The same template rendered
with other entities and values gives the confusable distractors of the long_noisy items.
"""
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4.2   # SmolLM2's tokenizer on this English prose (checked when calibrating)

# fictional companies used only as distractor entities
OTHER_COMPANIES = [
    "Copperline Data", "Westmarch Freight", "Ivory Gate Labs", "Plover Systems", "Kestrel Foods",
    "Tamsin Biotech", "Greywater Marine", "Larchmont Textiles", "Orrin Valley Farms", "Saltbridge Media",
    "Juniper Arc Health", "Redfern Tooling", "Cask & Crane Brewing", "Halcyon Optics", "Merrow Insurance",
    "Bellweather Solar", "Dunmore Civil Works", "Pike Hollow Mills",
]


@dataclass
class Fact:
    """One extractive question: `pattern` with {e} (entity) and {v} (value) renders the gold chunk."""
    id: str
    question: str
    answers: list[str]
    entity: str
    value: str
    pattern: str
    old: str                      # same entity, superseded or otherwise wrong value: {e}, {v}
    alts: list[str]               # wrong values of the same type
    similar: list[str]            # entity names a careless reader confuses with `entity`
    source: str
    background: list[str] = field(default_factory=list)   # harmless chunks about the same entity
    others: list[str] = field(default_factory=list)       # distractor entities (default OTHER_COMPANIES)

    def render(self, entity: str, value: str, old: bool = False) -> str:
        return (self.old if old else self.pattern).format(e=entity, v=value)

    @property
    def gold_text(self) -> str:
        return self.render(self.entity, self.value)


def chunk(cid: str, text: str, source: str | None = None) -> dict:
    return {"id": cid, "text": text, "source": source}


def item(id: str, category: str, question: str, answers: list[str], scorer: str, chunks: list[dict],
         gold: list[str], schema: dict | None = None, instruction: str | None = None,
         max_new_tokens: int | None = None, meta: dict | None = None) -> dict:
    """A golden item as a dict whose keys are exactly testbed.workloads.items.Item's fields, in order."""
    ids = [c["id"] for c in chunks]
    assert len(ids) == len(set(ids)), f"{id}: duplicate chunk ids"
    assert set(gold) <= set(ids), f"{id}: gold chunk missing"
    return {"id": id, "category": category, "question": question, "answers": answers, "scorer": scorer,
            "chunks": chunks, "gold_chunk_ids": gold, "schema": schema, "instruction": instruction,
            "max_new_tokens": max_new_tokens, "meta": meta or {}}


def approx_tokens(text: str) -> int:
    return round(len(text) / CHARS_PER_TOKEN)


def output_budget(answer: str, lo: int = 96, hi: int = 160) -> int:
    """max_new_tokens for an answer that copies the input: its length plus slack, clamped to [lo, hi]."""
    return max(lo, min(hi, int(approx_tokens(answer) * 1.2) + 16))


def fact_item(fact: Fact, category: str, chunks: list[dict], gold_id: str, meta: dict | None = None) -> dict:
    return item(fact.id, category, fact.question, fact.answers, "contains", chunks, [gold_id], meta=meta)
