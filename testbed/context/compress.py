"""Compression that keeps chunk ids: query-aware sentence extraction and LLMLingua-style token pruning.

    {name: extract, budget_tokens: 200}          # best sentences for the question, up to 200 tokens
    {name: extract, ratio: 0.15, coverage: 2, prefer_current: true, min_relative: 0.5, order: best_last}
    {name: prune, keep_ratio: 0.5}               # keep the most informative half of each chunk's tokens

Neither step ever removes all the evidence. A ratio (`ratio`, `keep_ratio`) applies only to a
context of more than `min_context_tokens` tokens; a smaller one passes whole, since a share of a
short context is a budget smaller than its sentences (ratio 0.15 of a 100-token lookup kept nothing).
When the budget is below the best sentence, `extract` keeps that sentence whole, over budget, and
says so in its stats (`over_budget`); non-empty in gives non-empty out (tests/test_context_properties.py).

`extract` scores every sentence, read after its chunk's lead sentence ("Its chief executive is ..."
names no company itself), with the reranker's relevance (rerank.adjusted: BM25, times question-word
`coverage`, times `dated_weight` for a dated past when the question asks about now), plus
`chunk_weight` times its chunk's own relevance, both scaled to [0, 1]. Sentences within
`min_relative` of the best score's distance from the worst are taken best first, at most `top_n`,
while they fit the budget, each with its chunk's lead (its title: which contract, which company) when `keep_lead` is on;
the best sentence comes alone when its lead does not fit; a sentence whose text (with its lead) was already taken is not
taken twice. Each kept chunk's sentences are written back in their original order, the chunks
ordered by their best sentence (`order`, as in rerank: best_last puts it nearest the question).

`prune` computes each token's self-information -log p(token | preceding tokens of the chunk) with
the arm's small model, sums it per word (a word is what stays readable), and keeps the words with
the most information until `keep_ratio` of the chunk's tokens is reached, in their original order.
"""
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.lm import token_logprobs
from testbed.context.rerank import RerankOptions, adjusted, arrange, select
from testbed.context.text import bm25_scores, count_tokens, sentences, text_hash
from testbed.workloads.items import Chunk

# chosen on the dev split (configs/compression_dev.yaml; docs/context.md): at or below it a ratio passes the context whole
MIN_CONTEXT_TOKENS = 600


def below_min(lm: Any, chunks: list[Chunk], min_tokens: int) -> int | None:
    """The context's token count when it is at most `min_tokens` (so a ratio must not apply), else None."""
    n = sum(count_tokens(lm, [c.text for c in chunks]))
    return n if n <= min_tokens else None


class ExtractOptions(StepOptions):
    budget_tokens: int | None = Field(None, ge=1, description="context tokens to keep")
    ratio: float | None = Field(None, gt=0.0, le=1.0, description="share of the incoming context tokens to keep")
    chunk_weight: float = Field(0.5, ge=0.0, description="weight of the chunk's own relevance in a sentence's score")
    keep_lead: bool = Field(True, description="keep a chunk's first sentence with any sentence taken from it")
    drop_unmatched: bool = Field(True, description="never take a sentence that shares no word with the question")
    coverage: float = Field(0.0, ge=0.0, le=8.0, description="power of the question-word coverage factor (0: off)")
    prefer_current: bool = Field(False, description="down-weight dated-past sentences when the question asks about now")
    dated_weight: float = Field(0.5, ge=0.0, le=1.0, description="factor on a dated-past sentence's relevance")
    min_relative: float | None = Field(None, ge=0.0, le=1.0,
                                       description="take only sentences above this share of the score range")
    top_n: int | None = Field(None, ge=1, description="take at most this many sentences (their leads come with them)")
    order: Literal["best_first", "best_last", "retrieved"] = "retrieved"
    min_context_tokens: int = Field(MIN_CONTEXT_TOKENS, ge=0,
                                    description="a ratio applies only above this many context tokens (dev split)")

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.budget_tokens is None) == (self.ratio is None):
            raise ValueError("give exactly one of budget_tokens (e.g. 200) or ratio (e.g. 0.4)")
        return self


class PruneOptions(StepOptions):
    keep_ratio: float = Field(0.5, gt=0.0, le=1.0, description="share of each chunk's tokens to keep")
    min_context_tokens: int = Field(MIN_CONTEXT_TOKENS, ge=0,
                                    description="prune only a context of more than this many tokens (dev split)")


def _scaled(x: np.ndarray) -> np.ndarray:
    return x / x.max() if len(x) and x.max() > 0 else np.zeros_like(x)


def relevance(o: ExtractOptions, query: str, chunks: list[Chunk]) -> np.ndarray:
    """The reranker's corrected relevance of each chunk (or sentence-with-lead) for `query`. [len(chunks)]"""
    ro = RerankOptions(name="rerank", coverage=o.coverage, prefer_current=o.prefer_current, dated_weight=o.dated_weight)
    return adjusted(ro, query, chunks, bm25_scores(query, [c.text for c in chunks]))[0]


def sentence_table(o: ExtractOptions, query: str, chunks: list[Chunk]) -> list[tuple[int, int, str, float, str]]:
    """(chunk index, sentence index, text, score, text read with its lead) for every sentence of every chunk."""
    split = [sentences(c.text) or [c.text] for c in chunks]
    rows = [(ci, si, s, s if si == 0 else f"{split[ci][0]} {s}")
            for ci, ss in enumerate(split) for si, s in enumerate(ss)]
    own = relevance(o, query, [Chunk(chunks[ci].id, read) for ci, _, _, read in rows])
    chunk = _scaled(relevance(o, query, chunks))
    score = _scaled(own) + o.chunk_weight * np.array([chunk[r[0]] for r in rows])
    # a sentence with no word of the question (zero BM25, so zero corrected relevance) is marked -inf
    score = np.where((own > 0) | (not o.drop_unmatched), score, -np.inf)
    return [(ci, si, s, float(sc), read) for (ci, si, s, read), sc in zip(rows, score)]


def pick_sentences(rows, tokens: list[int], budget: int, keep_lead: bool, min_relative: float | None,
                   top_n: int | None = None) -> dict[tuple[int, int], float]:
    """Greedy best-first (chunk, sentence) keys that fit `budget`, with the score that brought each in.

    The top-scored sentence always comes in: with its lead when both fit, alone when it fits, and
    alone over budget when it does not (a budget below one sentence must not empty the context).
    """
    size = {(r[0], r[1]): t for r, t in zip(rows, tokens)}
    reads = {(r[0], r[1]): r[4] for r in rows}
    scores = np.array([r[3] for r in rows])
    finite = np.isfinite(scores)
    ranked = select(np.where(finite, scores, scores[finite].min() if finite.any() else 0.0), None, None, min_relative)
    ranked = [i for i in ranked if finite[i]] or ([best_row(scores)] if rows else [])
    picked: dict[tuple[int, int], float] = {}
    seen, used, taken = set(), 0, 0
    for ci, si, _, score, read in (rows[i] for i in ranked):
        if text_hash(read) in seen or (top_n and taken >= top_n):
            continue
        key, lead = (ci, si), (ci, 0)
        with_lead = [k for k in dict.fromkeys((lead, key)) if k not in picked and (k == key or keep_lead)]
        # only the best sentence may come alone: a lead-less fragment further down is mostly noise
        for new in (with_lead, [] if picked else [key]):
            cost = sum(size[k] for k in new)
            if new and (used + cost <= budget or (not picked and new == [key])):
                picked |= {k: score for k in new if k not in picked}
                seen |= {text_hash(reads[k]) for k in new}
                used += cost
                taken += 1
                break
    return picked


def best_row(scores: np.ndarray) -> int:
    """The top-scored sentence (first on ties); the first one when none shares a word with the question."""
    finite = np.isfinite(scores)
    return int(np.argmax(np.where(finite, scores, -np.inf))) if finite.any() else 0


@STEPS.register("extract")
class ExtractStep(Step):
    Options = ExtractOptions

    def __call__(self, query, chunks, item=None):
        if not chunks:
            return [], {}
        o = self.options
        if o.ratio is not None and (n := below_min(self.lm, chunks, o.min_context_tokens)) is not None:
            return list(chunks), {"passed_whole": n}
        rows = sentence_table(o, query, chunks)
        tokens = count_tokens(self.lm, [r[2] for r in rows])
        budget = o.budget_tokens or int(o.ratio * sum(count_tokens(self.lm, [c.text for c in chunks])))
        picked = pick_sentences(rows, tokens, budget, o.keep_lead, o.min_relative, o.top_n)
        best = {}
        for (ci, _), score in picked.items():
            best[ci] = max(best.get(ci, -np.inf), score)
        ranked = sorted(best, key=lambda ci: (-best[ci], ci))
        out = []
        for ci in arrange(ranked, o.order):
            kept = [r[2] for r in rows if r[0] == ci and (ci, r[1]) in picked]
            out.append(Chunk(chunks[ci].id, " ".join(kept), chunks[ci].source))
        leads = sum(1 for ci, si in picked if si == 0)
        used = sum(t for r, t in zip(rows, tokens) if (r[0], r[1]) in picked)
        return out, {"budget_tokens": budget, "sentences_in": len(rows), "sentences_kept": len(picked),
                     "chunks_without_lead": len(best) - leads if o.keep_lead else 0, "over_budget": used > budget}


def word_spans(lm: Any, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """Token ids of `text`, the character spans of its whitespace-separated words, and each token's word."""
    enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace() and start is not None:
            spans.append((start, i))
            start = None
        elif not ch.isspace() and start is None:
            start = i
    ends = [e for _, e in spans]
    owner = [min(int(np.searchsorted(ends, s, side="right")), len(spans) - 1) for s, _ in enc["offset_mapping"]]
    return enc["input_ids"], spans, owner


def prune_words(text: str, spans: list[tuple[int, int]], owner: list[int], logprobs: list[float],
                keep_ratio: float) -> str:
    """Keep the most informative words of `text` until `keep_ratio` of its tokens is kept, in order."""
    if not spans or not owner:
        return text
    info = np.zeros(len(spans))
    size = np.zeros(len(spans), dtype=int)
    for w, lp in zip(owner, logprobs):
        info[w] += -lp
        size[w] += 1
    info[owner[0]] = np.inf                  # the first token has no context: keep its word
    budget, kept, used = keep_ratio * size.sum(), [], 0
    for w in sorted(range(len(spans)), key=lambda w: (-info[w], w)):
        if used + size[w] <= budget or not kept:
            kept.append(w)
            used += size[w]
    return " ".join(text[slice(*spans[w])] for w in sorted(kept))


@STEPS.register("prune")
class PruneStep(Step):
    Options = PruneOptions

    def __call__(self, query, chunks, item=None):
        if not chunks:
            return [], {}
        if (n := below_min(self.lm, chunks, self.options.min_context_tokens)) is not None:
            return list(chunks), {"passed_whole": n}
        enc = [word_spans(self.lm, c.text) for c in chunks]
        lps = token_logprobs(self.lm, [e[0] for e in enc])
        out = [Chunk(c.id, prune_words(c.text, spans, owner, lp, self.options.keep_ratio), c.source)
               for c, (_, spans, owner), lp in zip(chunks, enc, lps)]
        return out, {"keep_ratio": self.options.keep_ratio}
