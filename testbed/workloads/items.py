"""The unit of a workload: a question, its context chunks, its reference answers and how to score it."""
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    source: str | None = None         # document the chunk came from, where known


@dataclass
class Item:
    id: str
    category: str
    question: str
    answers: list[str]                # reference answers; any one counts as right
    scorer: str = "contains"          # a name in testbed.metrics.quality.SCORERS
    chunks: list[Chunk] = field(default_factory=list)          # the context as retrieved, in rank order
    gold_chunk_ids: list[str] = field(default_factory=list)    # the chunks that hold the answer
    schema: dict[str, Any] | None = None                       # JSON Schema, for the json scorer
    instruction: str | None = None    # how to answer ("Answer with the date only.")
    max_new_tokens: int | None = None # per-item cap; the workload's max_new_tokens otherwise
    meta: dict[str, Any] = field(default_factory=dict)         # generator facts (duplicates injected, ...)

    def gold_chunks(self) -> list[Chunk]:
        gold = set(self.gold_chunk_ids)
        return [c for c in self.chunks if c.id in gold]
