"""One client cannot hurt another in `testbed serve`: extreme sampling is bounded at the API, an engine
error caused by one request fails that request alone (the others resume and finish as if nothing
happened), and the hf engine never batches requests with different sampling settings."""
import time

import pytest

from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.request import Request, SamplingParams
from testbed.serve.build import Defaults, sampling
from testbed.serve.loop import EngineLoop, ServedRequest
from testbed.serve.protocol import CompletionRequest

POISON = 3                   # a prompt holding this token id makes the engines below raise mid-step
PROMPTS = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15, 16], [17, 18]]


def poisoned(engine_cls):
    class Poisoned(engine_cls):
        """The real engine, except a step that holds a poisoned prompt raises."""

        def step(self):
            held = [*self.scheduler.waiting, *self.scheduler.running] if hasattr(self, "scheduler") else []
            rows = [s.request for s in held] or list(getattr(self, "waiting", []))
            if any(POISON in r.prompt_ids for r in rows):
                raise RuntimeError("poisoned request")
            return super().step()
    return Poisoned


def wait_for(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def reference(engine, n_new):
    reqs = [Request(id=f"ref{i}", prompt_ids=p, max_new_tokens=n_new) for i, p in enumerate(PROMPTS)]
    for r in reqs:
        engine.add_request(r)
    while engine.has_unfinished():
        engine.step()
    return [r.output_ids for r in reqs]


@pytest.mark.parametrize("engine_cls,options", [(PagedEngine, PagedOptions(block_size=4, kv_budget_tokens=256)),
                                                (HFEngine, HFOptions(batch_size=4))])
def test_an_engine_error_from_one_request_fails_it_alone(tiny_lm, engine_cls, options):
    n_new = 24
    expected = reference(engine_cls(tiny_lm, options), n_new)
    cls = poisoned(engine_cls)
    loop = EngineLoop(lambda: cls(tiny_lm, options), max_queue=16).start()
    try:
        events = {i: [] for i in range(len(PROMPTS))}
        reqs = [ServedRequest(id=f"r{i}", prompt_ids=p, max_new_tokens=n_new, arrival_time=time.perf_counter(),
                              listener=events[i].append) for i, p in enumerate(PROMPTS)]
        for r in reqs:
            loop.submit(r)
        if engine_cls is PagedEngine:           # the poison arrives while the others are mid-stream
            assert wait_for(lambda: all(r.num_output_tokens >= 2 for r in reqs))
        bad = ServedRequest(id="bad", prompt_ids=[POISON, 5, 6], max_new_tokens=n_new, arrival_time=time.perf_counter())
        loop.submit(bad)
        assert wait_for(lambda: bad.done and all(r.done for r in reqs))
        assert bad.status == "failed" and "alone" in bad.error
        assert [r.status for r in reqs] == ["finished"] * len(reqs)
        assert [r.output_ids for r in reqs] == expected          # resumed exactly where they were
        streamed = [[t for e in events[i] if e[0] == "tokens" for t in e[1]] for i in range(len(reqs))]
        assert streamed == expected                              # every token streamed once
        assert loop.counters.engine_errors >= 1 and loop.alive
    finally:
        loop.stop()


def test_an_error_no_request_reproduces_fails_everything_once_it_repeats(tiny_lm):
    class AlwaysBroken(PagedEngine):
        def step(self):
            raise RuntimeError("broken engine")
    loop = EngineLoop(lambda: AlwaysBroken(tiny_lm, PagedOptions(block_size=4, kv_budget_tokens=64))).start()
    try:
        req = ServedRequest(id="a", prompt_ids=[5, 6], max_new_tokens=4, arrival_time=time.perf_counter())
        loop.submit(req)
        assert wait_for(lambda: req.done) and req.status == "failed" and "broken engine" in req.error
    finally:
        loop.stop()


@pytest.mark.parametrize("temperature,seed", [(1e-300, None), (1e-6, 2 ** 63 - 1), (0.0, 0)])
def test_extreme_sampling_is_bounded_at_the_api(tiny_lm, temperature, seed):
    body = CompletionRequest.model_validate({"model": "m", "prompt": "x", "temperature": temperature, "seed": seed})
    sp = sampling(body, Defaults(SamplingParams(), 4).sampling)
    assert sp.greedy and sp.temperature == 0.0
    options = PagedOptions(block_size=4, kv_budget_tokens=64)
    req = Request(id="x", prompt_ids=[5, 6, 7], max_new_tokens=6, sampling=sp)
    engine = PagedEngine(tiny_lm, options)
    engine.add_request(req)
    while engine.has_unfinished():
        engine.step()
    assert req.status == "finished" and req.output_ids == run_greedy(tiny_lm, options, [5, 6, 7], 6)


def run_greedy(lm, options, prompt, n_new):
    engine = PagedEngine(lm, options)
    req = Request(id="g", prompt_ids=prompt, max_new_tokens=n_new)
    engine.add_request(req)
    while engine.has_unfinished():
        engine.step()
    return req.output_ids


@pytest.mark.parametrize("seed", [2 ** 63, 2 ** 70, -1])
def test_seeds_outside_0_to_2_63_are_refused(seed):
    with pytest.raises(ValueError):
        CompletionRequest.model_validate({"model": "m", "prompt": "x", "seed": seed})


def test_a_sampled_batch_mate_never_changes_a_greedy_request(tiny_lm):
    greedy = lambda: Request(id="g", prompt_ids=[5, 6, 7], max_new_tokens=12)   # noqa: E731
    alone = HFEngine(tiny_lm, HFOptions(batch_size=2))
    expected = greedy()
    alone.add_request(expected)
    alone.step()
    engine = HFEngine(tiny_lm, HFOptions(batch_size=2))
    hot = Request(id="hot", prompt_ids=[9, 10, 11], max_new_tokens=12, sampling=SamplingParams(2.0, seed=1))
    g = greedy()
    engine.add_request(hot)
    engine.add_request(g)
    assert engine.step() == [hot] and engine.step() == [g]         # two batches, one per sampling setting
    assert g.output_ids == expected.output_ids


def speculative():
    from testbed.sections import SECTIONS
    return {"speculative": SECTIONS.get("speculative").model_validate({"method": "prompt_lookup", "ngram": 2,
                                                                      "num_draft_tokens": 4})}


@pytest.mark.parametrize("make", [lambda lm: HFEngine(lm, HFOptions(batch_size=2)),
                                  lambda lm: HFEngine(lm, HFOptions(batch_size=1), speculative()),
                                  lambda lm: PagedEngine(lm, PagedOptions(block_size=4, kv_budget_tokens=256))],
                         ids=["hf", "hf-speculative", "paged"])
def test_a_resumed_request_continues_exactly_where_it_was(tiny_lm, make):
    prompt = [100, 2000, 37, 512, 9, 77, 1500]      # the tiny model's output changes token at position 13
    full = reference_one(make(tiny_lm), prompt, 20)
    assert len(set(full[10:])) > 1 or full[10:] != full[:10]
    resumed = Request(id="r", prompt_ids=prompt, max_new_tokens=20, output_ids=full[:10], token_times=[0.0] * 10)
    engine = make(tiny_lm)
    engine.add_request(resumed)
    while engine.has_unfinished():
        engine.step()
    assert resumed.output_ids == full and resumed.status == "finished"


def reference_one(engine, prompt, n_new):
    req = Request(id="ref", prompt_ids=prompt, max_new_tokens=n_new)
    engine.add_request(req)
    while engine.has_unfinished():
        engine.step()
    return req.output_ids


def test_a_request_still_in_the_inbox_during_recovery_joins_the_engine_once(tiny_lm):
    options = PagedOptions(block_size=4, kv_budget_tokens=256)
    late = ServedRequest(id="late", prompt_ids=[9, 10, 11], max_new_tokens=6, arrival_time=time.perf_counter())
    loop = None

    class FailsOnceAfterASubmit(PagedEngine):
        failed = False

        def step(self):
            if not FailsOnceAfterASubmit.failed:          # a client submits while this step runs, then it fails
                FailsOnceAfterASubmit.failed = True
                loop.submit(late)
                raise RuntimeError("transient")
            return super().step()

    loop = EngineLoop(lambda: FailsOnceAfterASubmit(tiny_lm, options), max_queue=8).start()
    try:
        first = ServedRequest(id="first", prompt_ids=[5, 6, 7], max_new_tokens=6, arrival_time=time.perf_counter())
        loop.submit(first)
        assert wait_for(lambda: first.done and late.done)
        assert [first.status, late.status] == ["finished", "finished"]
        assert late.output_ids == run_greedy(tiny_lm, options, [9, 10, 11], 6)       # not added twice
    finally:
        loop.stop()
