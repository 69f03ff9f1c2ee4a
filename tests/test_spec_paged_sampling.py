"""Sampled speculative decoding on the paged engine is distributed as plain sampling of the target.

Many seeded requests with one prompt run in one paged engine, so drafts are made and verified
for many sequences per step. The first output token comes from the prefill; the second is the first
one a speculative step emits (an accepted draft or a resample from the residual). The pair's counts
are tested (chi-square) against the target's own p(a) p(b | a). A rule that accepts every draft fails
the same test, so it can tell.
"""
import time

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from testbed.drive import run_all
from testbed.engines.hf_cache import forward, new_cache
from testbed.engines.paged import model_runner
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.engines.sampling import logits_to_probs
from testbed.request import Request, SamplingParams
from testbed.speculative.config import SpeculativeConfig

SAMPLING = dict(temperature=1.5, top_k=4)
PROMPT = [17, 93, 41, 8, 17, 93, 41, 8, 17]                 # a repeat: prompt lookup proposes
SECTIONS = {"draft_other_model": {"draft": {"id": "random:tiny-qwen2"}, "num_draft_tokens": 3},
            "prompt_lookup": {"method": "prompt_lookup", "ngram": 2, "num_draft_tokens": 3}}


def pair_counts(lm, section: dict, n: int) -> dict[tuple[int, int], int]:
    """Counts of (first, second) output tokens over n seeded requests run together on the paged engine."""
    engine = PagedEngine(lm, PagedOptions(block_size=4, max_num_seqs=64),
                         {"speculative": SpeculativeConfig(**section)})
    reqs = [Request(id=f"s{i}", prompt_ids=PROMPT, max_new_tokens=5, arrival_time=time.perf_counter(),
                    sampling=SamplingParams(**SAMPLING, seed=i)) for i in range(n)]
    done = run_all(engine, reqs)
    assert engine.stats()["spec_num_draft_tokens"] > 0
    counts: dict[tuple[int, int], int] = {}
    for r in done:
        key = (r.output_ids[0], r.output_ids[1])
        counts[key] = counts.get(key, 0) + 1
    return counts


def target_pairs(lm) -> dict[tuple[int, int], float]:
    """The target's p(a) p(b | a) over the pairs it can make."""
    sp = SamplingParams(**SAMPLING)
    with torch.inference_mode():
        p0 = logits_to_probs(forward(lm.model, PROMPT, new_cache(lm.model), keep=1)[-1], sp)
        out = {}
        for a in torch.nonzero(p0).flatten().tolist():
            p1 = logits_to_probs(forward(lm.model, PROMPT + [a], new_cache(lm.model), keep=1)[-1], sp)
            out.update({(a, b): float(p0[a] * p1[b]) for b in torch.nonzero(p1).flatten().tolist()})
    return out


def pvalue(counts: dict, expected: dict, n: int) -> float:
    """Chi-square over the pairs, cells expecting fewer than 5 pooled into one; 0 if any pair is impossible."""
    if set(counts) - set(expected):
        return 0.0
    big = [c for c in expected if n * expected[c] >= 5]
    small = [c for c in expected if n * expected[c] < 5]
    obs = [counts.get(c, 0) for c in big] + ([sum(counts.get(c, 0) for c in small)] if small else [])
    exp = [n * expected[c] for c in big] + ([n * sum(expected[c] for c in small)] if small else [])
    return float(chisquare(np.array(obs, float), np.array(exp) * sum(obs) / sum(exp)).pvalue)


@pytest.mark.parametrize("name", list(SECTIONS))
def test_paged_speculative_sampling_matches_the_target(chaotic_lm, name):
    n = 1500
    assert pvalue(pair_counts(chaotic_lm, SECTIONS[name], n), target_pairs(chaotic_lm), n) > 1e-3


def test_the_paged_chi_square_catches_a_rule_that_accepts_every_draft(chaotic_lm, monkeypatch):
    monkeypatch.setattr(model_runner, "verify", lambda draft, rows, sp, q, gen: (draft.tolist(), len(draft)))
    n = 1500
    assert pvalue(pair_counts(chaotic_lm, SECTIONS["draft_other_model"], n), target_pairs(chaotic_lm), n) < 1e-6
