"""Re-ranking: order chunks by relevance to the question and cut at top_n or a score threshold.

    {name: rerank, method: bm25, top_n: 4}
    {name: rerank, method: lm, min_relative: 0.5, order: best_last}

`bm25` scores each chunk with BM25 over the request's chunks. `lm` scores it with the arm's small
model: the mean log-probability of the question's tokens after the chunk (higher: the chunk makes
the question more expected). `min_score` is an absolute cut in the method's units; `min_relative`
keeps chunks within that fraction of the best score's distance from the worst ((s - min) / (max - min)).
`order` places the best chunk first, last (nearest the question), or keeps the retrieved order.
"""
from typing import Any, Literal

import numpy as np
from pydantic import Field

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.lm import token_logprobs
from testbed.context.text import bm25_scores
from testbed.workloads.items import Chunk


class RerankOptions(StepOptions):
    method: Literal["bm25", "lm"] = "bm25"
    top_n: int | None = Field(None, ge=1, description="keep at most this many chunks")
    min_score: float | None = Field(None, description="drop chunks scoring below this (method's units)")
    min_relative: float | None = Field(None, ge=0.0, le=1.0, description="drop chunks below this share of the score range")
    order: Literal["best_first", "best_last", "retrieved"] = "best_first"


def lm_scores(lm: Any, query: str, chunks: list[Chunk]) -> np.ndarray:
    """Mean log p(question tokens | chunk text) under the small model. [len(chunks)]"""
    tok = lm.tokenizer
    q_ids = tok("\nQuestion: " + query, add_special_tokens=False)["input_ids"]
    c_ids = tok([c.text for c in chunks], add_special_tokens=False)["input_ids"]
    lps = token_logprobs(lm, [c + q_ids for c in c_ids])
    return np.array([float(np.mean(lp[-len(q_ids):])) for lp in lps])


def select(scores: np.ndarray, top_n: int | None, min_score: float | None,
           min_relative: float | None) -> list[int]:
    """Indices kept, best first (ties keep the retrieved order)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if min_score is not None:
        order = [i for i in order if scores[i] >= min_score]
    if min_relative is not None and len(scores):
        lo, hi = float(scores.min()), float(scores.max())
        order = [i for i in order if hi == lo or (scores[i] - lo) / (hi - lo) >= min_relative]
    return order[:top_n] if top_n else order


def arrange(kept: list[int], order: str) -> list[int]:
    if order == "best_last":
        return kept[::-1]
    if order == "retrieved":
        return sorted(kept)
    return kept


@STEPS.register("rerank")
class RerankStep(Step):
    Options = RerankOptions

    def __call__(self, query, chunks, item=None):
        if not chunks:
            return [], {"scores": {}}
        o = self.options
        scores = lm_scores(self.lm, query, chunks) if o.method == "lm" else bm25_scores(query, [c.text for c in chunks])
        kept = arrange(select(scores, o.top_n, o.min_score, o.min_relative), o.order)
        return [chunks[i] for i in kept], {"scores": {c.id: round(float(s), 4) for c, s in zip(chunks, scores)}}
