"""Deduplication: exact (chunk id, normalised-text hash) and near-duplicate (shingle Jaccard or MinHash).

    {name: dedup, threshold: 0.7, shingle: 1, method: jaccard, same_facts: true}

Chunks arrive in rank order, so the first copy of a cluster is the best-ranked one and is kept.
`jaccard` compares shingle sets exactly (a retrieved list is tens of chunks, so O(n²) pairs is
cheap); `minhash` estimates the same Jaccard from `num_perm` signatures, for long lists.

`same_facts` makes a near-duplicate also carry the same facts: the same names and numbers
(capitalised or digit-bearing words, stop words aside). Templated text is why: a confusable
distractor ("Its chief executive is Lena Vostrikova") shares more wording with the gold chunk
than a reworded copy does ("leads" for "oversees"), so wording alone would drop a different
fact and keep a copy. A different name or number is a different fact, never a duplicate.
"""
from typing import Literal

import re
from functools import lru_cache

import numpy as np
from pydantic import Field

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.text import jaccard, shingles, text_hash
from testbed.workloads.items import Chunk

PRIME = (1 << 61) - 1


class DedupOptions(StepOptions):
    exact: bool = Field(True, description="drop repeated chunk ids and repeated normalised text")
    near: bool = Field(True, description="drop near-duplicates (shingle Jaccard >= threshold)")
    threshold: float = Field(0.7, gt=0.0, le=1.0, description="Jaccard similarity that counts as a near-duplicate")
    shingle: int = Field(1, ge=1, le=16, description="words per shingle")
    same_facts: bool = Field(True, description="a near-duplicate must name the same names and numbers")
    method: Literal["jaccard", "minhash"] = "jaccard"
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations")


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    return frozenset(ENGLISH_STOP_WORDS)


def facts(text: str) -> frozenset[str]:
    """Names and numbers of a text: words that start upper case or hold a digit, stop words aside."""
    stop = _stop_words()
    return frozenset(w.lower() for w in re.findall(r"\w+", text)
                     if (w[0].isupper() or any(ch.isdigit() for ch in w)) and w.lower() not in stop)


def minhash_signatures(sets: list[set[str]], num_perm: int, seed: int = 0) -> np.ndarray:
    """One MinHash signature per set under random universal hashes (a*x + b) mod p. [len(sets), num_perm]"""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, num_perm, dtype=np.uint64)
    b = rng.integers(0, PRIME, num_perm, dtype=np.uint64)
    out = np.full((len(sets), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for i, s in enumerate(sets):
        x = np.array([int(text_hash(t)[:15], 16) for t in s], dtype=np.uint64)[:, None]   # [S, 1]
        out[i] = ((x * a + b) % PRIME).min(axis=0)   # uint64 wraps; still a fixed hash family
    return out


def similarity_matrix(texts: list[str], shingle: int, method: str = "jaccard", num_perm: int = 128) -> np.ndarray:
    """Pairwise Jaccard (exact or MinHash estimate) of the texts' word shingles. [n, n]"""
    sets = [shingles(t, shingle) for t in texts]
    if method == "minhash":
        sig = minhash_signatures(sets, num_perm)
        return (sig[:, None, :] == sig[None, :, :]).mean(axis=-1)
    return np.array([[jaccard(a, b) for b in sets] for a in sets])


def duplicate_of(chunks: list[Chunk], exact: bool = True, near: bool = True, threshold: float = 0.7,
                 shingle: int = 1, method: str = "jaccard", num_perm: int = 128,
                 same_facts: bool = True) -> list[tuple[int, str] | None]:
    """For each chunk: (index of the earlier chunk it repeats, "exact" | "near"), or None if it is first."""
    sim = similarity_matrix([c.text for c in chunks], shingle, method, num_perm) if near and chunks else None
    if sim is not None and same_facts:
        fs = [facts(c.text) for c in chunks]
        sim = sim * np.array([[a == b for b in fs] for a in fs])
    seen_ids: dict[str, int] = {}
    seen_hash: dict[str, int] = {}
    out: list[tuple[int, str] | None] = []
    for i, c in enumerate(chunks):
        h = text_hash(c.text)
        first = seen_ids.get(c.id, seen_hash.get(h)) if exact else None
        if first is not None:
            out.append((first, "exact"))
        elif sim is not None and i and sim[i, :i].max() >= threshold:
            out.append((int(sim[i, :i].argmax()), "near"))
        else:
            out.append(None)
        seen_ids.setdefault(c.id, i)
        seen_hash.setdefault(h, i)
    return out


@STEPS.register("dedup")
class DedupStep(Step):
    Options = DedupOptions

    def __call__(self, query, chunks, item=None):
        o = self.options
        dup = duplicate_of(chunks, o.exact, o.near, o.threshold, o.shingle, o.method, o.num_perm, o.same_facts)
        kept = [c for c, d in zip(chunks, dup) if d is None]
        kinds = [d[1] for d in dup if d is not None]
        return kept, {"removed_exact": kinds.count("exact"), "removed_near": kinds.count("near"),
                      "removed": [c.id for c, d in zip(chunks, dup) if d is not None]}
