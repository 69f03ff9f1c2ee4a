"""Compression that keeps chunk ids: query-aware sentence extraction and LLMLingua-style token pruning.

    {name: extract, budget_tokens: 200}          # best sentences for the question, up to 200 tokens
    {name: extract, ratio: 0.4}                  # ... up to 40% of the incoming context tokens
    {name: prune, keep_ratio: 0.5}               # keep the most informative half of each chunk's tokens

`extract` scores every sentence (read after its chunk's lead sentence) by BM25 against the question, plus `chunk_weight` times its chunk's
score (a sentence inherits relevance from where it sits), both scaled to [0, 1]; it takes sentences
best first while they fit, then writes each kept chunk's sentences back in their original order,
with the chunk's lead sentence (its title: which contract, which clause) when `keep_lead` is on.

`prune` computes each token's self-information -log p(token | preceding tokens of the chunk) with
the arm's small model, sums it per word (a word is what stays readable), and keeps the words with
the most information until `keep_ratio` of the chunk's tokens is reached, in their original order.
"""
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.lm import token_logprobs
from testbed.context.text import bm25_scores, count_tokens, sentences
from testbed.workloads.items import Chunk


class ExtractOptions(StepOptions):
    budget_tokens: int | None = Field(None, ge=1, description="context tokens to keep")
    ratio: float | None = Field(None, gt=0.0, le=1.0, description="share of the incoming context tokens to keep")
    chunk_weight: float = Field(0.5, ge=0.0, description="weight of the chunk's own relevance in a sentence's score")
    keep_lead: bool = Field(True, description="keep a chunk's first sentence with any sentence taken from it")
    drop_unmatched: bool = Field(True, description="never take a sentence that shares no word with the question")

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.budget_tokens is None) == (self.ratio is None):
            raise ValueError("give exactly one of budget_tokens (e.g. 200) or ratio (e.g. 0.4)")
        return self


class PruneOptions(StepOptions):
    keep_ratio: float = Field(0.5, gt=0.0, le=1.0, description="share of each chunk's tokens to keep")


def _scaled(x: np.ndarray) -> np.ndarray:
    return x / x.max() if len(x) and x.max() > 0 else np.zeros_like(x)


def sentence_table(query: str, chunks: list[Chunk], chunk_weight: float) -> list[tuple[int, int, str, float, float]]:
    """(chunk index, sentence index, text, score, own BM25) for every sentence of every chunk."""
    split = [sentences(c.text) or [c.text] for c in chunks]
    rows = [(ci, si, s) for ci, ss in enumerate(split) for si, s in enumerate(ss)]
    # a sentence is read with its chunk's lead ("Its chief executive is ..." names no company itself)
    own = bm25_scores(query, [s if si == 0 else f"{split[ci][0]} {s}" for ci, si, s in rows])
    chunk = _scaled(bm25_scores(query, [c.text for c in chunks]))
    score = _scaled(own) + chunk_weight * np.array([chunk[r[0]] for r in rows])
    return [(ci, si, s, float(sc), float(o)) for (ci, si, s), sc, o in zip(rows, score, own)]


def pick_sentences(rows, tokens: list[int], budget: int, keep_lead: bool, drop_unmatched: bool) -> set[tuple[int, int]]:
    """Greedy best-first selection of (chunk, sentence) keys whose tokens (plus leads) fit `budget`."""
    size = {(r[0], r[1]): t for r, t in zip(rows, tokens)}
    picked: set[tuple[int, int]] = set()
    used = 0
    for ci, si, _, _, own in sorted(rows, key=lambda r: (-r[3], r[0], r[1])):
        if drop_unmatched and own <= 0:
            continue
        new = {(ci, si)} | ({(ci, 0)} if keep_lead else set())
        cost = sum(size[k] for k in new - picked)
        if used + cost <= budget:
            picked |= new
            used += cost
    return picked


@STEPS.register("extract")
class ExtractStep(Step):
    Options = ExtractOptions

    def __call__(self, query, chunks, item=None):
        o = self.options
        rows = sentence_table(query, chunks, o.chunk_weight)
        tokens = count_tokens(self.lm, [r[2] for r in rows])
        budget = o.budget_tokens or int(o.ratio * sum(count_tokens(self.lm, [c.text for c in chunks])))
        picked = pick_sentences(rows, tokens, budget, o.keep_lead, o.drop_unmatched)
        out = []
        for ci, c in enumerate(chunks):
            kept = [r[2] for r in rows if r[0] == ci and (ci, r[1]) in picked]
            if kept:
                out.append(Chunk(c.id, " ".join(kept), c.source))
        return out, {"budget_tokens": budget, "sentences_in": len(rows), "sentences_kept": len(picked)}


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
        enc = [word_spans(self.lm, c.text) for c in chunks]
        lps = token_logprobs(self.lm, [e[0] for e in enc])
        out = [Chunk(c.id, prune_words(c.text, spans, owner, lp, self.options.keep_ratio), c.source)
               for c, (_, spans, owner), lp in zip(chunks, enc, lps)]
        return out, {"keep_ratio": self.options.keep_ratio}
