"""Re-ranking: order chunks by relevance to the question and cut at top_n or a score threshold.

    {name: rerank, method: bm25, top_n: 4}
    {name: rerank, method: lm, min_relative: 0.5, order: best_last}
    {name: rerank, top_n: 1, coverage: 2, prefer_current: true}

`bm25` scores each chunk with BM25 over the request's chunks. `lm` scores it with the arm's small
model: the mean log-probability of the question's tokens after the chunk (higher: the chunk makes
the question more expected). Two general corrections multiply a non-negative relevance (the BM25
score, or exp(mean log p) for `lm`): `coverage: c` by (share of the question's content words the
chunk holds) ** c, so a chunk that repeats the question's names but lacks the asked-for term
("warranty") falls behind one that has both; `prefer_current` by `dated_weight` when the
question asks about now and the chunk states a dated past (temporal.py: superseded contracts,
"until 2019 ... was"). `min_score` is an absolute cut on the method's raw score; `min_relative`
keeps chunks within that fraction of the best (adjusted) score's distance from the worst ((s - min) / (max - min)).
`order` places the best chunk first, last (nearest the question), or keeps the retrieved order.
"""
from typing import Any, Literal

import numpy as np
from pydantic import Field

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.lm import token_logprobs
from testbed.context.temporal import asks_about_now, dated_past
from testbed.context.text import bm25_scores, coverage
from testbed.workloads.items import Chunk


class RerankOptions(StepOptions):
    method: Literal["bm25", "lm"] = "bm25"
    top_n: int | None = Field(None, ge=1, description="keep at most this many chunks")
    min_score: float | None = Field(None, description="drop chunks scoring below this (method's units)")
    min_relative: float | None = Field(None, ge=0.0, le=1.0, description="drop chunks below this share of the score range")
    order: Literal["best_first", "best_last", "retrieved"] = "best_first"
    coverage: float = Field(0.0, ge=0.0, le=8.0, description="power of the question-word coverage factor (0: off)")
    prefer_current: bool = Field(False, description="down-weight chunks stating a dated past when the question asks about now")
    dated_weight: float = Field(0.5, ge=0.0, le=1.0, description="factor on a dated-past chunk's relevance")


def lm_scores(lm: Any, query: str, chunks: list[Chunk]) -> np.ndarray:
    """Mean log p(question tokens | chunk text) under the small model. [len(chunks)]"""
    tok = lm.tokenizer
    q_ids = tok("\nQuestion: " + query, add_special_tokens=False)["input_ids"]
    c_ids = tok([c.text for c in chunks], add_special_tokens=False)["input_ids"]
    lps = token_logprobs(lm, [c + q_ids for c in c_ids])
    return np.array([float(np.mean(lp[-len(q_ids):])) for lp in lps])


def adjusted(o: RerankOptions, query: str, chunks: list[Chunk], raw: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Relevance after the coverage and temporal corrections, and the ids flagged as dated past."""
    if not o.coverage and not o.prefer_current:
        return raw, []
    rel = np.exp(raw) if o.method == "lm" else raw.copy()
    texts = [c.text for c in chunks]
    if o.coverage:
        rel = rel * coverage(query, texts) ** o.coverage
    flagged = [i for i, t in enumerate(texts) if dated_past(query, t)] if o.prefer_current and asks_about_now(query) else []
    rel[flagged] *= o.dated_weight
    return rel, [chunks[i].id for i in flagged]


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
        raw = lm_scores(self.lm, query, chunks) if o.method == "lm" else bm25_scores(query, [c.text for c in chunks])
        rel, dated = adjusted(o, query, chunks, raw)
        order = select(rel, None, None, o.min_relative)
        if o.min_score is not None:
            order = [i for i in order if raw[i] >= o.min_score]
        kept = arrange(order[:o.top_n] if o.top_n else order, o.order)
        stats = {"scores": {c.id: round(float(s), 4) for c, s in zip(chunks, raw)}}
        if rel is not raw:
            stats |= {"adjusted": {c.id: round(float(s), 4) for c, s in zip(chunks, rel)}, "dated_past": dated}
        return [chunks[i] for i in kept], stats
