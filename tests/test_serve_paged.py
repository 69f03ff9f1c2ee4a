"""The paged engine behind `testbed serve`: aborts free KV blocks (prefix-cache references included),
a client that disconnects mid-stream gives its blocks back (seen through /metrics), requests too
big for the KV budget are a 400, a full queue is a 503, and greedy outputs over HTTP equal the
in-process paged engine's. Every wait here is bounded in time."""
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
from openai import OpenAI

from testbed.config import validate
from testbed.drive import run_all
from testbed.engines.openai import OpenAIEngine, OpenAIOptions
from testbed.engines.paged.engine import PagedEngine, PagedOptions
from testbed.request import Request
from testbed.serve.server import BackgroundServer, build_state
from testbed.workloads.prompts import render_prompt

MODEL = "random:tiny-llama"
PAGED = {"engine": "paged", "block_size": 16, "kv_budget_tokens": 4096}
PREFIX = list(range(20, 52))            # 8 full blocks of 4: shared through the prefix cache


def paged_config(**arm):
    return validate({"name": "serve-paged", "model": {"id": MODEL}, "baseline": "local",
                     "arms": {"local": {**PAGED, **arm}}, "workload": {"max_new_tokens": 8},
                     "sampling": {"temperature": 0}})


def request(rid: str, prompt: list[int], max_new: int) -> Request:
    return Request(id=rid, prompt_ids=list(prompt), max_new_tokens=max_new, arrival_time=time.perf_counter())


def step_until(engine, pred, limit=200):
    out = []
    for _ in range(limit):
        if pred():
            return out
        out += engine.step()
    raise AssertionError("condition not reached")


def test_abort_of_a_running_sequence_keeps_shared_prefix_blocks_for_the_other(tiny_lm):
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=4, num_blocks=64))
    want = run_all(PagedEngine(tiny_lm, PagedOptions(block_size=4, num_blocks=64)),
                   [request("b", PREFIX + [7, 8, 9], 12)])[0].output_ids
    a, b = request("a", PREFIX + [3, 4, 5], 40), request("b", PREFIX + [7, 8, 9], 12)
    engine.add_request(a)
    step_until(engine, lambda: a.num_output_tokens >= 2)        # a's prompt blocks are hashed
    engine.add_request(b)
    step_until(engine, lambda: b.num_output_tokens >= 1)        # b shares a's 8 prefix blocks
    shared = engine.scheduler.running[1].block_table[:8]
    assert engine.scheduler.running[0].block_table[:8] == shared
    assert all(engine.blocks.blocks[i].ref_count == 2 for i in shared)
    own_of_a = len(engine.scheduler.running[0].block_table) - 8
    used = engine.blocks.num_used

    assert engine.abort_request("a") is a and a.cancelled
    assert all(engine.blocks.blocks[i].ref_count == 1 for i in shared)
    assert engine.blocks.num_used == used - own_of_a
    finished = step_until(engine, lambda: not engine.has_unfinished())
    assert [r.id for r in finished] == ["b"] and b.output_ids == want     # a never comes back
    assert engine.blocks.num_used == 0 and engine.gauges()["kv_blocks_in_use"] == 0
    assert engine.abort_request("a") is None


def test_abort_of_a_waiting_request_touches_no_block(tiny_lm):
    engine = PagedEngine(tiny_lm, PagedOptions(block_size=4, num_blocks=64, max_num_seqs=1))
    a, b = request("a", PREFIX, 6), request("b", PREFIX, 6)
    engine.add_request(a)
    engine.add_request(b)
    engine.step()
    g = engine.gauges()
    assert g["seqs_running"] == 1 and g["seqs_waiting"] == 1
    assert engine.abort_request("b") is b and b.cancelled and engine.gauges()["kv_blocks_in_use"] == g[
        "kv_blocks_in_use"]
    assert [r.id for r in step_until(engine, lambda: not engine.has_unfinished())] == ["a"]
    assert engine.gauges() == {"kv_blocks_in_use": 0, "kv_blocks_total": 64, "seqs_running": 0, "seqs_waiting": 0}


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(build_state(paged_config(), "local", max_queue=64)) as srv:
        yield srv


def open_stream(server, body: dict) -> http.client.HTTPConnection:
    """POST a streaming completion and read its first SSE event; the caller closes the connection."""
    u = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", "/v1/completions", body=json.dumps({"model": MODEL, "stream": True, **body}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.readline().startswith(b"data: ")
    return conn


def wait_for(server, pred, timeout=60.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = server.metrics()
        if pred(m):
            return m
        time.sleep(0.05)
    return m


def test_disconnect_mid_stream_frees_its_kv_blocks_and_the_server_keeps_serving(server):
    client = OpenAI(base_url=server.base_url, api_key="-", max_retries=0, timeout=30)
    before = server.metrics()
    assert before["testbed_engine_kv_blocks_in_use"] == 0
    aborted = before.get('testbed_requests_total{outcome="aborted"}', 0)
    conn = open_stream(server, {"prompt": "Tell a long story", "max_tokens": 3000, "temperature": 0})
    during = server.metrics()
    assert during["testbed_engine_kv_blocks_in_use"] > 0 and during["testbed_requests_running"] == 1
    conn.sock.close()                    # go away mid-stream, 2,999 tokens short
    conn.close()
    m = wait_for(server, lambda m: m.get('testbed_requests_total{outcome="aborted"}', 0) > aborted
                 and m["testbed_engine_kv_blocks_in_use"] == 0)
    assert m.get('testbed_requests_total{outcome="aborted"}', 0) == aborted + 1
    assert m["testbed_engine_kv_blocks_in_use"] == 0 and m["testbed_engine_seqs_running"] == 0
    assert m["testbed_requests_running"] == 0 and m["testbed_live_tokens"] == 0
    assert m["testbed_generation_tokens_total"] - before["testbed_generation_tokens_total"] < 3000
    r = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=4, temperature=0)
    assert r.choices[0].finish_reason in ("length", "stop")


def test_a_request_beyond_the_kv_budget_is_a_400_not_a_failure():
    with BackgroundServer(build_state(paged_config(kv_budget_tokens=64), "local")) as srv:
        u = urlsplit(srv.base_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        body = {"model": MODEL, "prompt": "The sky is", "max_tokens": 200}
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        err = json.loads(resp.read())["error"]
        assert resp.status == 400 and err["param"] == "max_tokens" and "kv_budget_tokens" in err["message"]
        ok = OpenAI(base_url=srv.base_url, api_key="-", max_retries=0).completions.create(
            model=MODEL, prompt="The sky is", max_tokens=8, temperature=0)
        assert ok.usage.completion_tokens >= 1


def test_a_full_queue_answers_503_with_retry_after_and_recovers():
    with BackgroundServer(build_state(paged_config(), "local", max_queue=1)) as srv:
        hog = open_stream(srv, {"prompt": "Tell a long story", "max_tokens": 3000, "temperature": 0})
        u = urlsplit(srv.base_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("POST", "/v1/completions", body=json.dumps({"model": MODEL, "prompt": "hi", "max_tokens": 2}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        err = json.loads(resp.read())["error"]
        assert resp.status == 503 and resp.getheader("Retry-After") and err["code"] == "queue_full"
        hog.sock.close()
        hog.close()
        m = wait_for(srv, lambda m: m["testbed_requests_running"] == 0 and m["testbed_requests_waiting"] == 0)
        assert m['testbed_http_rejections_total{status="503"}'] == 1
        client = OpenAI(base_url=srv.base_url, api_key="-", max_retries=0, timeout=30)
        assert client.completions.create(model=MODEL, prompt="hi", max_tokens=2).usage.completion_tokens >= 1


def test_openai_engine_against_served_paged_arm_reproduces_the_in_process_paged_run(server):
    lm = server.state.lm
    questions = ["What is 2 + 2?", "Name a river.", "Spell cat.", "Say hello."]

    def reqs():
        out = []
        for i, q in enumerate(questions):
            text, ids = render_prompt(lm.tokenizer, [{"role": "user", "content": q}])
            out.append(Request(id=f"q{i}", prompt_ids=ids, prompt_text=text, max_new_tokens=12,
                               arrival_time=time.perf_counter(), eos_token_ids=lm.eos_token_ids))
        return out
    local = {r.id: r.output_ids for r in run_all(PagedEngine(lm, PagedOptions(block_size=16)), reqs())}
    remote = run_all(OpenAIEngine(lm, OpenAIOptions(base_url=server.base_url, concurrency=4,
                                                    extra_body={"return_token_ids": True})), reqs())
    assert all(r.status == "finished" for r in remote)
    assert {r.id: r.output_ids for r in remote} == local
