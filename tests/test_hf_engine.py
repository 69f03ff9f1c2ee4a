"""The hf baseline engine: static batches, per-token timestamps, KV accounting, failures."""
import time

import torch

from testbed.drive import run_all
from testbed.engines.hf import HFEngine, HFOptions, left_pad
from testbed.request import Request, SamplingParams


def make_requests(lm, lengths, max_new=6):
    g = torch.Generator().manual_seed(1)
    return [Request(id=f"r{i}", prompt_ids=torch.randint(10, 200, (n,), generator=g).tolist(),
                    max_new_tokens=max_new, arrival_time=time.perf_counter(), eos_token_ids=())
            for i, n in enumerate(lengths)]


def greedy_reference(lm, req):
    ids = torch.tensor([req.prompt_ids])
    out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=req.max_new_tokens,
                            do_sample=False, eos_token_id=None, pad_token_id=lm.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_left_pad_shapes_and_mask():
    ids, mask = left_pad([[5, 6, 7], [8]], 0, "cpu")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batch1_matches_plain_generate_and_stamps_every_token(tiny_lm):
    reqs = make_requests(tiny_lm, [7, 13, 4])
    done = run_all(HFEngine(tiny_lm, HFOptions(batch_size=1)), reqs)
    assert {r.id for r in done} == {"r0", "r1", "r2"}
    for r in done:
        assert r.output_ids == greedy_reference(tiny_lm, r)
        assert len(r.token_times) == len(r.output_ids) == 6 and r.finish_reason == "length"
        assert r.token_times == sorted(r.token_times) and r.token_times[0] >= r.arrival_time


def test_static_batches_share_first_token_time(tiny_lm):
    reqs = make_requests(tiny_lm, [5, 9, 3, 11])
    engine = HFEngine(tiny_lm, HFOptions(batch_size=2))
    run_all(engine, reqs)
    assert reqs[0].token_times[0] == reqs[1].token_times[0]
    assert reqs[2].token_times[0] > reqs[1].token_times[-1]      # second batch starts after the first ends
    assert engine.stats()["mean_batch_size"] == 2


def test_kv_accounting_counts_padding_and_reservation_as_waste(tiny_lm):
    reqs = make_requests(tiny_lm, [4, 10], max_new=3)
    engine = HFEngine(tiny_lm, HFOptions(batch_size=2))
    run_all(engine, reqs)
    st = engine.stats()
    # reserved: 2 rows x (10 padded prompt + 3 new) = 26 slots at every one of 3 steps
    assert st["kv_cache_allocated_tokens"] == 26
    used = sum((4 + t) + (10 + t) for t in (1, 2, 3))
    assert abs(st["kv_waste_pct"] - 100 * (1 - used / (26 * 3))) < 1e-9


def test_request_beyond_context_fails_and_others_run(tiny_lm):
    reqs = make_requests(tiny_lm, [5, tiny_lm.max_context])
    done = run_all(HFEngine(tiny_lm, HFOptions(batch_size=2)), reqs)
    by_id = {r.id: r for r in done}
    assert by_id["r1"].status == "failed" and "exceeds the model's context" in by_id["r1"].error
    assert by_id["r0"].status == "finished" and len(by_id["r0"].output_ids) == 6


def test_eos_stops_a_request(tiny_lm):
    req = make_requests(tiny_lm, [6], max_new=8)[0]
    first = greedy_reference(tiny_lm, req)[2]
    req.eos_token_ids = (first,)
    run_all(HFEngine(tiny_lm, HFOptions()), [req])
    assert req.finish_reason == "stop" and req.output_ids[-1] == first and len(req.output_ids) <= 3


def test_seeded_sampling_is_reproducible(tiny_lm):
    outs = []
    for _ in range(2):
        req = make_requests(tiny_lm, [6], max_new=8)[0]
        req.sampling = SamplingParams(temperature=1.0, seed=123)
        run_all(HFEngine(tiny_lm, HFOptions()), [req])
        outs.append(req.output_ids)
    assert outs[0] == outs[1]


def test_recorded_token_logprobs_match_a_teacher_forced_pass(tiny_lm):
    # a batch of two prompts of different lengths (left padding): each row's in-generation log-probs
    # equal those of a fresh forward pass over its own prompt + output
    import pytest

    from testbed.routing.confidence import mean_logprob

    engine = HFEngine(tiny_lm, HFOptions(batch_size=2))
    engine.record_logprobs = True
    reqs = make_requests(tiny_lm, [9, 3])
    for r in reqs:
        engine.add_request(r)
    engine.step()
    for r in reqs:
        assert len(r.token_logprobs) == r.num_output_tokens > 0 and all(v <= 0 for v in r.token_logprobs)
        mean = sum(r.token_logprobs) / len(r.token_logprobs)
        assert mean == pytest.approx(mean_logprob(tiny_lm, r.prompt_ids, r.output_ids), abs=1e-4)
    plain = make_requests(tiny_lm, [4])[0]
    engine = HFEngine(tiny_lm, HFOptions())
    engine.add_request(plain)
    engine.step()
    assert plain.num_output_tokens and plain.token_logprobs is None          # not asked for: not computed
