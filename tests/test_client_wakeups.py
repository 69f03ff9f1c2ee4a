"""The openai client wakes only when it has something to do: on a 2-core box its idle wake-ups (the
drive loop polling every 2 ms, RSS sampled every 10 ms over the server's processes too) came out of
the server being measured (docs/parity_cpu.md, 2026-12-02 probe)."""
import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

import testbed.runner as runner
from testbed.config import validate
from testbed.drive import HANDED_OVER_WAIT_S, drive
from testbed.engines.openai import OpenAIEngine, OpenAIOptions
from testbed.metrics.memory import MemoryTracker
from testbed.plugins import load_plugins
from testbed.request import Request

LAST = "data: " + json.dumps({"choices": [{"index": 0, "text": "a", "token_ids": [5], "finish_reason": "length"}]})


class Quick(BaseHTTPRequestHandler):
    """Answers every completion after 50 ms with one token."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(0.05)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(f"{LAST}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture(scope="module")
def server(http_stub):
    with http_stub(Quick) as port:
        yield f"http://127.0.0.1:{port}/v1"


def test_a_handed_over_schedule_is_collected_without_polling(tiny_lm, server):
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url=server, served_model_name="m", max_retries=0))
    waits, real_step = [], engine.step

    def step(wait_s=None):
        waits.append(wait_s)
        return real_step(wait_s)
    engine.step = step
    done, ended = [], []
    make = lambda i, arrival: Request(id=str(i), prompt_ids=[1], prompt_text="x", max_new_tokens=1,  # noqa: E731
                                      arrival_time=arrival)
    drive(engine, [0, 1, 2], make, [0.0, 0.3, 0.6], None, lambda r: (done.append(r), ended.append(time.perf_counter())))
    engine.close()
    assert sorted(r.status for r in done) == ["finished"] * 3
    # ~0.65 s of schedule: polling every 2 ms would have called step() ~300 times
    assert len(waits) <= 12 and set(waits) == {HANDED_OVER_WAIT_S}
    # a finish still wakes the loop at once, not after the wait
    assert max(e - r.token_times[-1] for r, e in zip(done, ended)) < 0.05


def test_step_without_a_wait_still_returns_after_poll_s(tiny_lm, server):
    engine = OpenAIEngine(tiny_lm, OpenAIOptions(base_url=server, served_model_name="m", poll_s=0.01))
    t = time.perf_counter()
    assert engine.step() == []
    assert time.perf_counter() - t < 0.2        # the drive loop's admission path keeps its short poll
    engine.close()


@pytest.mark.parametrize("engine, expected", [("openai", OpenAIEngine.memory_sample_s), ("hf", 0.01)])
def test_the_runner_samples_memory_at_the_engines_rate(tmp_path, monkeypatch, server, engine, expected):
    seen = []

    class Spy(MemoryTracker):
        def __init__(self, device="cpu", interval_s=0.01, *args):
            seen.append(interval_s)
            super().__init__(device, interval_s, *args)
    monkeypatch.setattr(runner, "MemoryTracker", Spy)
    load_plugins()
    opts = {"engine": "openai", "base_url": server, "served_model_name": "m"} if engine == "openai" else {"engine": "hf"}
    cfg = validate({"name": "mem", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "device": "cpu",
                    "threads": 1, "baseline": "a",
                    "workload": {"dataset": "random", "limit": 2, "random": {"input_len": 8, "output_len": 1},
                                 "warmup": 0, "ignore_eos": True},
                    "arms": {"a": opts}})
    runner.run_experiment(cfg, out_dir=tmp_path, progress=False)
    assert seen and set(seen) == {expected}       # every timed pass of the arm
    assert OpenAIEngine.memory_sample_s >= 0.5    # a client's RSS, once in a while
