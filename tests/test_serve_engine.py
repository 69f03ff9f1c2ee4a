"""The `openai` engine: against `testbed serve` it reproduces the in-process engine (greedy, token
for token) within a stated latency tolerance; against a flaky fake server it retries 429/5xx and
connection errors with backoff, does not retry other 4xx, and records every error per request."""
import json
import statistics
import time
from http.server import BaseHTTPRequestHandler

import pytest

from testbed.config import validate
from testbed.drive import drive
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.openai import OpenAIEngine, OpenAIOptions, split_tokens
from testbed.request import Request
from testbed.serve.server import BackgroundServer, build_state
from testbed.workloads.prompts import render_prompt

QUESTIONS = ["What is 2 + 2?", "Name a river.", "Spell cat.", "Say hello.", "Count to three.", "Pick a colour."]
# Loopback HTTP on a shared 2-core CI box: TTFT p50 may exceed the in-process p50 by this much.
TTFT_TOLERANCE_MS = 50.0


def requests_for(lm, max_new=10):
    out = []
    for i, q in enumerate(QUESTIONS):
        text, ids = render_prompt(lm.tokenizer, [{"role": "user", "content": q}])
        out.append((text, ids, f"q{i}", max_new))
    return out


def run_one_at_a_time(engine, specs, lm):
    """Each request alone (closed loop, concurrency 1), so TTFT is service time, not queueing."""
    done = []

    def make(spec, arrival):
        text, ids, rid, max_new = spec
        return Request(id=rid, prompt_ids=ids, prompt_text=text, max_new_tokens=max_new, arrival_time=arrival,
                       eos_token_ids=lm.eos_token_ids)
    drive(engine, specs, make, None, 1, done.append)
    return {r.id: r for r in done}


def ttft_ms(reqs):
    return statistics.median((r.token_times[0] - r.arrival_time) * 1e3 for r in reqs.values())


@pytest.fixture(scope="module")
def served():
    cfg = validate({"name": "t", "model": {"id": "random:tiny-llama"}, "baseline": "local",
                    "arms": {"local": {"engine": "hf"}}, "sampling": {"temperature": 0}})
    with BackgroundServer(build_state(cfg, "local")) as srv:
        yield srv


@pytest.mark.parametrize("extra", [{"return_token_ids": True}, {}], ids=["server-ids", "local-tokenizer"])
def test_remote_run_reproduces_the_in_process_run(served, extra):
    lm = served.state.lm
    specs = requests_for(lm)
    local = run_one_at_a_time(HFEngine(lm, HFOptions()), specs, lm)
    engine = OpenAIEngine(lm, OpenAIOptions(base_url=served.base_url, extra_body=extra))
    remote = run_one_at_a_time(engine, specs, lm)
    assert all(r.status == "finished" for r in remote.values())
    assert {k: r.output_ids for k, r in remote.items()} == {k: r.output_ids for k, r in local.items()}
    assert all(len(r.token_times) == len(r.output_ids) and r.token_times == sorted(r.token_times)
               for r in remote.values())
    sources = {r.stats["openai"]["token_count_source"] for r in remote.values()}
    assert sources == ({"server_token_ids"} if extra else {"server_usage"})
    assert all(r.stats["openai"]["server_prompt_tokens"] == r.num_prompt_tokens for r in remote.values())
    assert ttft_ms(remote) - ttft_ms(local) <= TTFT_TOLERANCE_MS


def test_split_tokens_times_each_token_by_the_chunk_that_completed_it(tiny_lm):
    chunks = [(1.0, "Hel", None), (2.0, "lo wor", None), (3.0, "ld", None)]
    ids, times = split_tokens(tiny_lm.tokenizer, chunks)
    assert ids == tiny_lm.tokenizer("Hello world", add_special_tokens=False)["input_ids"]
    assert times == sorted(times) and times[-1] == 3.0 and set(times) <= {1.0, 2.0, 3.0}


class Flaky(BaseHTTPRequestHandler):
    """Answers the first `fails` POSTs with `status`, then streams a two-token completion."""
    plan: dict = {}

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.plan["calls"] += 1
        if self.plan["calls"] <= self.plan["fails"]:
            body = json.dumps({"error": {"message": "try later", "type": "x", "param": None, "code": None}}).encode()
            self.send_response(self.plan["status"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for text, ids, fin in [("a", [5], None), ("b", [6], "length")]:
            chunk = {"choices": [{"index": 0, "text": text, "token_ids": ids, "finish_reason": fin}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def flaky(http_stub):
    with http_stub(Flaky) as port:
        yield port


def run_against(flaky, lm, status, fails, retries):
    Flaky.plan = {"calls": 0, "fails": fails, "status": status}
    url = f"http://127.0.0.1:{flaky}/v1"
    engine = OpenAIEngine(lm, OpenAIOptions(base_url=url, max_retries=retries, backoff_s=0.01, served_model_name="m"))
    req = Request(id="r", prompt_ids=[1], prompt_text="x", max_new_tokens=2, arrival_time=time.perf_counter())
    engine.add_request(req)
    deadline = time.monotonic() + 30
    while engine.has_unfinished() and time.monotonic() < deadline:
        engine.step()
    return req, engine


@pytest.mark.parametrize("status", [429, 503])
def test_retries_429_and_5xx_then_succeeds(flaky, tiny_lm, status):
    req, engine = run_against(flaky, tiny_lm, status, fails=2, retries=3)
    assert req.status == "finished" and req.output_ids == [5, 6]
    assert req.stats["openai"]["attempts"] == 3 and len(req.stats["openai"]["errors"]) == 2
    assert engine.stats()["openai_retries"] == 2


def test_gives_up_after_max_retries_with_every_error_recorded(flaky, tiny_lm):
    req, _ = run_against(flaky, tiny_lm, 503, fails=5, retries=1)
    assert req.status == "failed" and "503" in req.error
    assert req.stats["openai"]["attempts"] == 2 and len(req.stats["openai"]["errors"]) == 2


def test_a_400_is_not_retried(flaky, tiny_lm):
    req, _ = run_against(flaky, tiny_lm, 400, fails=1, retries=3)
    assert req.status == "failed" and req.stats["openai"]["attempts"] == 1 and "try later" in req.error


def test_connection_refused_is_retried_and_recorded(tiny_lm):
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url="http://127.0.0.1:9/v1", max_retries=2, backoff_s=0.01))
    req = Request(id="r", prompt_ids=[1], prompt_text="x", max_new_tokens=2, arrival_time=time.perf_counter())
    engine.add_request(req)
    deadline = time.monotonic() + 30
    while engine.has_unfinished() and time.monotonic() < deadline:
        engine.step()
    assert req.status == "failed" and req.stats["openai"]["attempts"] == 3
    assert all("connection refused or server unreachable" in e for e in req.stats["openai"]["errors"])


def test_an_openai_arm_names_the_served_model(tiny_lm):
    """The arm's `model` is its local spec; `served_model_name` is what goes in the request's `model` field."""
    cfg = validate({"name": "t", "model": {"id": "random:tiny-llama"}, "baseline": "local",
                    "arms": {"local": {"engine": "hf"}}, "sampling": {"temperature": 0}})
    with BackgroundServer(build_state(cfg, "local", served_name="alias-x", warmup=False)) as srv:
        outcome = {}
        for name in ("alias-x", "not-served"):
            arms = {"remote": {"engine": "openai", "base_url": srv.base_url, "served_model_name": name,
                               "max_retries": 0}}
            arm = validate({"name": "c", "model": {"id": "random:tiny-llama"}, "baseline": "remote",
                            "arms": arms}).arms["remote"]
            engine = OpenAIEngine(tiny_lm, arm.options)
            done = run_one_at_a_time(engine, requests_for(tiny_lm, max_new=2)[:1], tiny_lm)
            engine.close()
            outcome[name] = next(iter(done.values()))
    assert outcome["alias-x"].status == "finished"
    assert outcome["not-served"].status == "failed" and "not-served" in outcome["not-served"].error
