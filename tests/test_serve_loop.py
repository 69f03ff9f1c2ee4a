"""Serving internals with fakes: the engine loop (queue bound, aborts), incremental detokenising,
/metrics text, request validation, host checks, and overload over HTTP (a gated engine)."""
import threading
import time

import openai
import pytest
from openai import OpenAI

from testbed.engines.base import Engine
from testbed.engines.hf import HFEngine, HFOptions
from testbed.errors import UserError
from testbed.request import Request
from testbed.serve import metrics
from testbed.serve.app import ServeState
from testbed.serve.build import Defaults
from testbed.serve.loop import EngineLoop, Overloaded, ServedRequest
from testbed.serve.protocol import ChatRequest, CompletionRequest
from testbed.serve.server import BackgroundServer, check_host
from testbed.serve.stream import Detokenizer
from testbed.request import SamplingParams


class GatedEngine(Engine):
    """Emits one token per step, but only while `gate` is set: lets a test hold requests in flight."""

    def __init__(self, model=None, options=None, sections=None):
        super().__init__(model, options)
        self.gate = threading.Event()
        self.waiting: list[Request] = []

    def add_request(self, req):
        self.waiting.append(req)

    def has_unfinished(self):
        return bool(self.waiting)

    def validate_request(self, req):
        return None

    def step(self):
        if not self.gate.wait(0.05):
            return []
        req = self.waiting[0]
        req.status = "running"
        if req.append_tokens([7], time.perf_counter()):
            return [self.waiting.pop(0)]
        return []

    def abort_request(self, request_id):
        for r in self.waiting:
            if r.id == request_id:
                self.waiting.remove(r)
                return r
        return None

    def stats(self):
        return {"kv_cache_used_tokens": 5, "spec_acceptance_rate": 0.5, "label": "not a number"}


def served(i, events=None, max_new=3):
    return ServedRequest(id=f"r{i}", prompt_ids=[1, 2], max_new_tokens=max_new,
                         listener=events.append if events is not None else None)


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_loop_streams_tokens_then_done_and_bounds_the_queue():
    engine = GatedEngine()
    loop = EngineLoop(lambda: engine, max_queue=2).start()
    try:
        events = []
        loop.submit(served(0, events))
        loop.submit(served(1))
        with pytest.raises(Overloaded):
            loop.submit(served(2))
        engine.gate.set()
        assert wait_for(lambda: loop.snapshot()["running"] + loop.snapshot()["waiting"] == 0)
        assert [e[0] for e in events] == ["tokens", "tokens", "tokens", "done"]
        assert [e[1] for e in events[:3]] == [[7], [7], [7]] and events[-1][1].finish_reason == "length"
        loop.submit(served(3))                          # room again once requests complete
        assert loop.counters.outcomes["length"] == 2 and loop.counters.generation_tokens == 6
    finally:
        loop.stop()


def test_abort_drops_a_waiting_request_and_tells_its_listener():
    engine = GatedEngine()
    loop = EngineLoop(lambda: engine, max_queue=4).start()
    try:
        events = []
        loop.submit(served(0))
        loop.submit(served(1, events))
        assert wait_for(lambda: len(engine.waiting) == 2)
        loop.abort("r1")
        assert wait_for(lambda: events and events[-1][0] == "done")
        req = events[-1][1]
        assert req.status == "failed" and "disconnected" in req.error and req.output_ids == []
        assert [r.id for r in engine.waiting] == ["r0"] and loop.counters.outcomes["aborted"] == 1
    finally:
        engine.gate.set()
        loop.stop()


def test_an_engine_error_fails_live_requests_and_the_loop_keeps_serving():
    class Broken(GatedEngine):
        def step(self):
            raise RuntimeError("boom")
    # the fresh engine the loop replays the request on alone fails too: the request is failed, then a
    # third engine serves the next one
    engines = [Broken(), Broken(), GatedEngine()]
    built = list(engines)
    closed = []
    for e in built:
        e.close = lambda e=e: closed.append(e)
    engines[-1].gate.set()
    loop = EngineLoop(lambda: engines.pop(0) if len(engines) > 1 else engines[0], max_queue=4).start()
    try:
        events = []
        loop.submit(served(0, events))
        assert wait_for(lambda: events and events[-1][0] == "done")
        assert "boom" in events[-1][1].error and loop.counters.engine_errors == 1
        later = []
        loop.submit(served(1, later))
        assert wait_for(lambda: later and later[-1][0] == "done") and later[-1][1].status == "finished"
        assert closed == built[:2]          # each replaced engine is closed, the serving one is not
    finally:
        loop.stop()
    assert closed == built                  # stopping the loop closes the engine it held


def test_hf_abort_drops_waiting_and_cancelled_rows_stop_early(tiny_lm):
    engine = HFEngine(tiny_lm, HFOptions(batch_size=1))
    a, b = (Request(id=i, prompt_ids=[5, 6, 7], max_new_tokens=50) for i in "ab")
    engine.add_request(a)
    engine.add_request(b)
    assert engine.abort_request("b") is b and engine.abort_request("zz") is None
    a.cancelled = True
    assert engine.step() == [a] and not engine.has_unfinished()
    assert len(a.output_ids) <= 1                       # the cancelled row ended at its first check


def test_detokenizer_holds_back_split_characters_and_matches_the_full_decode(tiny_lm):
    tok = tiny_lm.tokenizer
    text = "naïve café — 東京 ok"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    detok = Detokenizer(tok)
    deltas = [detok.add([i]) for i in ids] + [detok.flush()]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == tok.decode(ids, skip_special_tokens=True)


def test_metrics_text_has_gauges_counters_and_numeric_engine_stats():
    loop = EngineLoop(GatedEngine, max_queue=3)
    loop.submit(served(0))
    text = metrics.render(loop, {"503": 2}, "m")
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines["testbed_requests_waiting"] == "1" and lines["testbed_max_queue"] == "3"
    assert lines['testbed_http_rejections_total{status="503"}'] == "2"
    assert lines["testbed_engine_spec_acceptance_rate"] == "0.5" and "testbed_engine_label" not in lines
    assert "# TYPE testbed_requests_running gauge" in text


def test_requests_with_unsupported_fields_are_named():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert ChatRequest.model_validate({**body, "presence_penalty": 0.0}).unsupported() is None
    assert ChatRequest.model_validate({**body, "logprobs": True}).unsupported()[0] == "logprobs"
    assert CompletionRequest.model_validate({"model": "m", "prompt": "x", "best_of": 1}).unsupported() is None
    assert CompletionRequest.model_validate({"model": "m", "prompt": "x", "echo": True}).unsupported()[0] == "echo"


def test_only_loopback_binds_without_the_flag():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_host(host, allow_remote=False)
    for host in ("0.0.0.0", "192.168.1.5", "example.com"):
        with pytest.raises(UserError):
            check_host(host, allow_remote=False)
        check_host(host, allow_remote=True)


def test_overload_gets_503_and_the_server_recovers(tiny_lm):
    engine = GatedEngine()
    state = ServeState(EngineLoop(lambda: engine, max_queue=2).start(), tiny_lm,
                       Defaults(SamplingParams(), 4), ["tiny"])
    with BackgroundServer(state) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="-", max_retries=0, timeout=30)
        ask = lambda: client.completions.create(model="tiny", prompt="hi", max_tokens=2)   # noqa: E731
        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        assert wait_for(lambda: len(engine.waiting) == 2)
        with pytest.raises(openai.InternalServerError) as e:       # 503
            ask()
        assert e.value.status_code == 503 and e.value.body["code"] == "queue_full"
        engine.gate.set()
        for t in threads:
            t.join(30)
        assert ask().choices[0].finish_reason == "length"
        assert state.http_errors["503"] == 1
