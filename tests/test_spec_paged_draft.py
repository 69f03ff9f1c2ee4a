"""The batched draft proposer of the paged engine: the same drafts as a per-sequence HF-cache draft, one
forward per draft position for all sequences, no re-prefill, rollback of rejected drafts, blocks returned."""
import time

import pytest
import torch

from testbed.config import ModelSpec
from testbed.drive import run_all
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.models import load_model
from testbed.request import Request, SamplingParams
from testbed.speculative.base import Job, PerSequence
from testbed.speculative.config import SpeculativeConfig
from testbed.speculative import draft_model
from testbed.speculative.draft_model import DraftModel
from testbed.speculative.paged_draft import PagedDrafter, common_prefix

GREEDY = SamplingParams()


@pytest.fixture(scope="module")
def qwen_draft(tiny_lm):
    """A tiny-qwen2 draft for the tiny-llama target: another model over the same tokenizer."""
    cfg = SpeculativeConfig(draft={"id": "random:tiny-qwen2", "dtype": "float32"})
    return DraftModel(cfg, tiny_lm, draft_lm=load_model(cfg.draft, "cpu"))


class Counting(PagedDrafter):
    """Counts draft forwards and the tokens each one feeds."""

    def _forward(self, seqs, rows=None):
        self.fed.append(sum(len(st.token_ids) - st.num_computed for st in seqs))
        return super()._forward(seqs, rows)


def contexts(n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, 250, (7 + 4 * i,), generator=g).tolist() for i in range(n)]


def test_batched_drafts_equal_per_sequence_drafts_across_steps_with_rollback(qwen_draft):
    """Three sequences with different k, several steps, each accepting 0..k drafts then one corrected token."""
    batched = Counting(qwen_draft.model, block_size=4, num_blocks=64)
    batched.fed = []
    single = PerSequence(qwen_draft)
    ctxs, ks = contexts(3), [4, 2, 3]
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        jobs = [Job(i, c, k, GREEDY, None) for i, (c, k) in enumerate(zip(ctxs, ks))]
        got = [d.tokens for d in batched.propose(jobs)]
        assert got == [d.tokens for d in single.propose(jobs)]
        assert [len(t) for t in got] == ks
        fed = batched.fed[-max(ks):]
        assert len(fed) == max(ks)                       # one forward per draft position, all sequences in it
        if step:                                         # after the first call: no re-prefill, 1-2 new tokens each
            assert fed[0] <= 2 * len(ctxs) and fed[1:] == [sum(k > i for k in ks) for i in range(1, max(ks))]
        for i, c in enumerate(ctxs):
            keep = (step + i) % (ks[i] + 1)
            ctxs[i] = c + got[i][:keep] + [int(torch.randint(5, 250, (1,), generator=g))]
    for i in range(3):
        batched.forget(i)
    assert batched.blocks.num_free == len(batched.blocks.blocks)


def test_sampled_drafts_carry_the_q_they_were_drawn_from(qwen_draft):
    drafter = PagedDrafter(qwen_draft.model, block_size=4, num_blocks=32)
    sp = SamplingParams(temperature=1.0)
    jobs = [Job(i, c, 3, sp, torch.Generator().manual_seed(i)) for i, c in enumerate(contexts(2))]
    for d in drafter.propose(jobs):
        assert d.probs.shape == (3, qwen_draft.model.config.vocab_size)
        assert torch.allclose(d.probs.sum(-1), torch.ones(3))
        assert all(d.probs[i, t] > 0 for i, t in enumerate(d.tokens))


def test_without_room_a_sequence_gets_no_draft_and_idle_caches_are_evicted(qwen_draft):
    drafter = PagedDrafter(qwen_draft.model, block_size=4, num_blocks=6)         # 24 slots
    a, b = contexts(2)                                                           # 7 and 11 tokens
    assert len(drafter.propose([Job("a", a, 4, GREEDY, None)])[0].tokens) == 4  # a holds 3 blocks
    assert drafter.propose([Job("a", a, 4, GREEDY, None), Job("b", b + b, 4, GREEDY, None)])[1].tokens == []
    assert len(drafter.propose([Job("b", b, 4, GREEDY, None)])[0].tokens) == 4  # a is idle: evicted
    assert "a" not in drafter.seqs


@pytest.mark.parametrize("paged", [False, True])
def test_a_guess_the_draft_agrees_with_saves_its_forwards_and_never_changes_the_draft(qwen_draft, paged):
    """A perfect guess: one forward makes all k tokens; a wrong one: the same tokens as no guess at all."""
    ctx, k = contexts(1)[0], 5
    want = PerSequence(qwen_draft).propose([Job(0, ctx, k, GREEDY, None)])[0].tokens
    for guess, forwards in ((want, 1), ([want[0], want[1], 7, 7], k - 2), ([], k)):
        if paged:
            drafter = Counting(qwen_draft.model, block_size=4, num_blocks=32, guess=lambda c, n, sp: guess)
            drafter.fed = []
            got = drafter.propose([Job(0, ctx, k, GREEDY, None)])[0].tokens
            calls = len(drafter.fed)
        else:
            fork, calls = qwen_draft.fork(), []
            fork.guess = lambda c, n, sp: guess
            forward = draft_model.forward
            draft_model.forward = lambda *a, **kw: calls.append(1) or forward(*a, **kw)
            try:
                got = fork.propose(ctx, k, GREEDY, None).tokens
            finally:
                draft_model.forward = forward
            calls = len(calls)
        assert (got, calls) == (want, forwards), guess


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2 and common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2 and common_prefix([4], [5]) == 0


def test_the_paged_engine_drafts_every_sequence_together_and_returns_every_draft_block(tiny_lm):
    section = SpeculativeConfig(draft={"id": "random:tiny-qwen2"}, num_draft_tokens=3)
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=4), {"speculative": section})
    drafter = engine.speculator.proposer
    assert isinstance(drafter, PagedDrafter)
    calls = []
    forward = drafter._forward
    drafter._forward = lambda seqs, rows=None: calls.append(len(seqs)) or forward(seqs, rows)
    reqs = [Request(id=f"r{i}", prompt_ids=c, max_new_tokens=12, arrival_time=time.perf_counter())
            for i, c in enumerate(contexts(4))]
    done = run_all(engine, reqs)
    assert all(r.status == "finished" for r in done) and max(calls) == len(done)
    assert drafter.seqs == {} and drafter.blocks.num_free == len(drafter.blocks.blocks)
