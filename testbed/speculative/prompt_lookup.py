"""Prompt lookup (n-gram) proposer: copy what followed an earlier occurrence of the last n tokens.

No model and no KV cache: the draft is text the prompt (or the output so far) already holds,
which is why it wins on outputs that quote their input and costs almost nothing when it misses.
The longest n in [ngram_min, ngram] with a match wins; among matches the earliest (as
transformers' `prompt_lookup_num_tokens` does, so the two see the same drafts).

    speculative: {method: prompt_lookup, ngram: 3, ngram_min: 1, num_draft_tokens: 10}
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from testbed.speculative.base import PROPOSERS, Draft, Proposer


def find_continuation(context: np.ndarray, k: int, n_max: int, n_min: int = 1) -> list[int]:
    """Up to k tokens that followed the earliest earlier occurrence of the longest matching suffix n-gram."""
    length = len(context)
    for n in range(min(n_max, length - 1), n_min - 1, -1):
        windows = sliding_window_view(context[:-1], n)                  # [L-n, n]; excludes the suffix itself
        hits = np.flatnonzero((windows == context[-n:]).all(axis=1))
        if hits.size:
            start = int(hits[0]) + n
            return context[start:start + k].tolist()
    return []


@PROPOSERS.register("prompt_lookup")
class PromptLookup(Proposer):
    def propose(self, context, k, sampling, generator) -> Draft:
        ids = np.asarray(context, dtype=np.int64)
        return Draft(find_continuation(ids, k, self.cfg.ngram, self.cfg.ngram_min))
