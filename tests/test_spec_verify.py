"""The verification rule on hand-made p/q: greedy prefix, accept, reject, bonus, residual, and its exactness."""
import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from testbed.engines.sampling import logits_to_probs
from testbed.request import SamplingParams
from testbed.speculative.verify import residual, unsupported_sampling, verify

GREEDY = SamplingParams()
T1 = SamplingParams(temperature=1.0)


def logits_from_probs(p: list[list[float]]) -> torch.Tensor:
    """Logits whose softmax at temperature 1 is p (zeros become -inf)."""
    return torch.tensor(p).log()


def test_greedy_accepts_while_draft_equals_argmax_then_corrects():
    logits = torch.tensor([[0, 5, 0, 0], [0, 0, 5, 0], [5, 0, 0, 0], [0, 0, 0, 5]], dtype=torch.float)  # argmax 1,2,0,3
    assert verify(torch.tensor([1, 2, 3]), logits, GREEDY) == ([1, 2, 0], 2)
    assert verify(torch.tensor([3, 2, 0]), logits, GREEDY) == ([1], 0)


def test_greedy_all_accepted_adds_the_bonus_token():
    logits = torch.tensor([[0, 5, 0], [0, 0, 5], [5, 0, 0]], dtype=torch.float)
    assert verify(torch.tensor([1, 2]), logits, GREEDY) == ([1, 2, 0], 2)


def test_no_draft_is_a_plain_decode_step():
    logits = torch.tensor([[0, 0, 7.0]])
    assert verify(torch.tensor([], dtype=torch.long), logits, GREEDY) == ([2], 0)
    assert verify(torch.tensor([], dtype=torch.long), logits_from_probs([[0, 0, 1.0]]), T1) == ([2], 0)


def test_sampling_accepts_when_target_agrees_and_samples_bonus_from_the_last_position():
    p = [[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]]     # bonus position is one-hot on 2
    q = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0]])        # q == p: min(1, p/q) = 1, always accepted
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        assert verify(torch.tensor([0, 1]), logits_from_probs(p), T1, q, gen) == ([0, 1, 2], 2)


def test_sampling_rejects_a_token_the_target_never_makes_and_resamples_from_the_residual():
    p = [[0.0, 0.5, 0.5, 0.0], [0.25] * 4]
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]])                    # drafted token 0 has p = 0: always rejected
    seen = set()
    for seed in range(30):
        tokens, n = verify(torch.tensor([0]), logits_from_probs(p), T1, q, torch.Generator().manual_seed(seed))
        assert n == 0 and len(tokens) == 1
        seen.add(tokens[0])
    assert seen == {1, 2}                                        # residual max(0, p - q) = p here


def test_residual_keeps_only_where_target_exceeds_draft():
    p, q = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.6, 0.2])
    assert torch.allclose(residual(p, q), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(residual(p, p), p)                    # no mass left: fall back to p


def test_deterministic_draft_uses_one_hot_q():
    p = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert verify(torch.tensor([1]), logits_from_probs(p), T1, None, torch.Generator().manual_seed(0)) == ([1, 0], 1)
    assert verify(torch.tensor([2]), logits_from_probs(p), T1, None, torch.Generator().manual_seed(0)) == ([1], 0)


def first_token_counts(p: torch.Tensor, q: torch.Tensor, n: int, rule=verify) -> np.ndarray:
    """Counts of the first emitted token over n draws of a k-token draft sampled from q."""
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    logits = p.log()
    drafts = torch.multinomial(q, n, replacement=True, generator=gen).T     # [n, k]: column i ~ q[i]
    counts = np.zeros(p.shape[-1])
    for draft in drafts:
        tokens, _ = rule(draft, logits, T1, q, gen)
        counts[tokens[0]] += 1
    return counts


P = torch.tensor([[0.40, 0.05, 0.25, 0.20, 0.10], [0.1, 0.2, 0.3, 0.2, 0.2], [0.2] * 5])   # [k+1, V]
Q = torch.tensor([[0.05, 0.45, 0.20, 0.10, 0.20], [0.3, 0.3, 0.1, 0.2, 0.1]])              # [k, V], far from P


def test_first_emitted_token_is_distributed_as_the_target():
    n = 4000
    counts = first_token_counts(P, Q, n)
    assert chisquare(counts, n * P[0].numpy()).pvalue > 1e-3


def test_the_chi_square_check_catches_a_wrong_rule():
    def accept_everything(draft, logits, sp, q, gen):        # emits the draft as is: distributed as q
        return draft.tolist(), len(draft)
    n = 4000
    counts = first_token_counts(P, Q, n, accept_everything)
    assert chisquare(counts, n * P[0].numpy()).pvalue < 1e-6


def test_logits_to_probs_applies_temperature_top_k_and_top_p():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    assert torch.allclose(logits_to_probs(logits, SamplingParams(temperature=1.0)), logits.softmax(-1))
    assert torch.allclose(logits_to_probs(logits, SamplingParams(temperature=2.0)), (logits / 2).softmax(-1))
    top2 = logits_to_probs(logits, SamplingParams(temperature=1.0, top_k=2))
    assert (top2[2:] == 0).all() and torch.allclose(top2[:2], logits[:2].softmax(-1))
    full = logits.softmax(-1)                                   # ~[0.64, 0.24, 0.09, 0.03]
    nucleus = logits_to_probs(logits, SamplingParams(temperature=1.0, top_p=0.8))
    assert (nucleus[:2] > 0).all() and (nucleus[2:] == 0).all() and float(full[0]) < 0.8


@pytest.mark.parametrize("sp", [SamplingParams(temperature=1e-5), SamplingParams(temperature=1.0, top_p=0.0)])
def test_settings_the_verifier_cannot_honour_are_named(sp):
    reason = unsupported_sampling(sp)
    assert reason and "speculative decoding" in reason


def test_supported_settings_pass():
    assert unsupported_sampling(GREEDY) is None
    assert unsupported_sampling(SamplingParams(temperature=0.7, top_p=0.9, top_k=50)) is None


def test_the_cache_goes_by_the_keyword_the_model_takes():
    from testbed.engines.hf_cache import cache_kwarg

    class Old:      # transformers 5.17: forward(input_ids, ..., past_key_values, ...)
        def forward(self, input_ids=None, past_key_values=None, use_cache=None, **kwargs): ...

    class New:      # transformers 5.24: forward(input_ids, ..., cache, ...)
        def forward(self, input_ids=None, cache=None, use_cache=None, **kwargs): ...

    assert cache_kwarg(Old) == "past_key_values" and cache_kwarg(New) == "cache"
