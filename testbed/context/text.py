"""Text helpers shared by the context steps: words, sentences, shingles, BM25 scores, query coverage, token counts.

    bm25_scores("notice period?", ["The notice period is 90 days.", "Fees are due in 45 days."])
    # array([0.84, 0.  ])

Word splitting and a light suffix stemmer ("periods" -> "period") are deterministic and cheap;
BM25 comes from bm25s with English stop words removed.
"""
import hashlib
import re
from typing import Any

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[A-Z0-9$])")
SUFFIXES = ("ies", "ing", "ed", "es", "s")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def normalise(text: str) -> str:
    """Lower case, punctuation and runs of whitespace dropped: what an exact-duplicate check compares."""
    return " ".join(words(text))


def text_hash(text: str) -> str:
    return hashlib.blake2b(normalise(text).encode(), digest_size=12).hexdigest()


def stem(word: str) -> str:
    for suf in SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: -len(suf)] + ("y" if suf == "ies" else "")
    return word


def shingles(text: str, size: int) -> set[str]:
    """Word n-grams of the normalised text; a text shorter than `size` words is one shingle."""
    ws = words(text)
    if len(ws) <= size:
        return {" ".join(ws)}
    return {" ".join(ws[i:i + size]) for i in range(len(ws) - size + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def sentences(text: str) -> list[str]:
    """Split prose at sentence ends followed by a capital, digit, quote or bracket."""
    return [s for s in (p.strip() for p in SENTENCE_END.split(text)) if s]


class Bm25Index:
    """A bm25s index over `texts` (stemmed words, English stop words dropped); built once, queried often."""

    def __init__(self, texts: list[str]):
        import bm25s
        self.size = len(texts)
        corpus = bm25s.tokenize([_stemmed(t) for t in texts], stopwords="en", show_progress=False)
        self.vocab = corpus.vocab
        self.index = bm25s.BM25()
        if self.vocab:
            self.index.index(corpus, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """Score of every text for `query`; zeros where no query word is in the corpus. [size]"""
        q = [w for w in dict.fromkeys(_stemmed(query).split()) if w in self.vocab]
        if not q:
            return np.zeros(self.size)
        return np.asarray(self.index.get_scores(q), dtype=float)


def _stemmed(text: str) -> str:
    return " ".join(stem(w) for w in words(text))


def coverage(query: str, texts: list[str]) -> np.ndarray:
    """Share of the query's distinct content words (stemmed, stop words aside) each text contains. [len(texts)]

    Lucene's classic coordination factor: BM25 alone lets a short chunk that repeats the query's
    names outscore the one that also holds the asked-for term ("warranty", "headquartered").
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    q = {stem(w) for w in words(query) if w not in ENGLISH_STOP_WORDS}
    if not q:
        return np.ones(len(texts))
    return np.array([len(q & {stem(w) for w in words(t)}) / len(q) for t in texts], dtype=float)


def bm25_scores(query: str, texts: list[str]) -> np.ndarray:
    """BM25 (bm25s, Lucene variant) score of every text for `query`. [len(texts)]"""
    return Bm25Index(texts).scores(query) if texts else np.zeros(0)


def count_tokens(lm: Any, texts: list[str]) -> list[int]:
    """Tokens per text under the arm's tokenizer (words where no model is given, as in unit tests)."""
    if not texts:
        return []
    if lm is None:
        return [len(words(t)) for t in texts]
    enc = lm.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in enc]
