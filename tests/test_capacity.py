"""Capacity search and load shapes: SLO bisection, rate with max-concurrency, duration-bounded runs,
concurrency sweeps."""
import json

import pytest

from testbed.capacity import bisect_rate
from testbed.config import validate
from testbed.drive import drive
from testbed.engines.base import Engine
from testbed.request import Request
from testbed.runner import run_experiment


def test_bisection_finds_the_knee_within_one_step():
    calls = []

    def measure(rate):           # meets the target up to 3 req/s
        calls.append(rate)
        return 1.0 if rate <= 3.0 else 0.5
    found, points = bisect_rate(measure, 0.25, 16, steps=8, target=0.9)
    assert 3.0 / 1.03 <= found <= 3.0 and len(points) == 10 and calls[:2] == [16, 0.25]


def test_bisection_reports_the_bracket_ends():
    assert bisect_rate(lambda r: 1.0, 1, 8, 5, 0.9) == (8, [(8, 1.0)])
    assert bisect_rate(lambda r: 0.0, 1, 8, 5, 0.9)[0] is None


class OneStepEngine(Engine):
    """Finishes every request one step after it was added; remembers the most it held at once."""

    def __init__(self):
        self.held, self.most = [], 0

    def add_request(self, req):
        self.held.append(req)
        self.most = max(self.most, len(self.held))

    def has_unfinished(self):
        return bool(self.held)

    def step(self):
        import time
        time.sleep(0.01)
        done, self.held = self.held, []
        for r in done:
            r.finish("length")
        return done


def test_rate_with_max_concurrency_holds_requests_and_keeps_their_scheduled_arrival():
    eng, done = OneStepEngine(), []
    make = lambda i, arrival: Request(id=str(i), prompt_ids=[1], max_new_tokens=1, arrival_time=arrival)  # noqa: E731
    sent = drive(eng, list(range(6)), make, [0.0] * 6, None, done.append, max_in_flight=2)
    assert sent == 6 and eng.most == 2
    assert len({r.arrival_time for r in done}) == 1          # all scheduled at t0, whatever their wait


def test_duration_bound_stops_sending():
    eng, done = OneStepEngine(), []
    make = lambda i, arrival: Request(id=str(i), prompt_ids=[1], max_new_tokens=1, arrival_time=arrival)  # noqa: E731
    sent = drive(eng, list(range(4)), make, [0.0, 0.0, 5.0, 5.0], None, done.append, duration_s=0.2)
    assert sent == 2 and len(done) == 2


def tiny(arrival, slo=None, **workload):
    cfg = {"name": "cap", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "device": "cpu", "threads": 1,
           "workload": {"dataset": "random", "limit": 3, "random": {"input_len": 8, "output_len": 3}, "warmup": 0,
                        "ignore_eos": True, "arrival": arrival, **workload},
           "baseline": "hf", "arms": {"hf": {"engine": "hf", "batch_size": 2}}}
    return validate({**cfg, **({"slo": slo} if slo else {})})


def test_slo_search_end_to_end(tmp_path):
    run_dir, summary = run_experiment(tiny({"kind": "slo_search", "rates": [2, 500], "steps": 2},
                                           slo={"ttft_ms": 0.001}), out_dir=tmp_path, progress=False)
    cap = summary["capacity"]["hf"]
    assert cap["max_rate_per_repeat"] == [None] and len(cap["searches"][0]["points"]) == 2
    assert "lower rates[0]" in cap["searches"][0]["note"]
    assert (run_dir / "plots" / "capacity_hf.png").read_bytes()[:4] == b"\x89PNG"
    assert "## SLO search" in (run_dir / "report.md").read_text()
    assert summary["sweep"]["rates"] == ["2", "500"]                     # each probe is a point of the curve


def test_slo_search_needs_an_slo():
    from testbed.errors import UserError
    with pytest.raises(UserError, match="slo_search needs an SLO"):
        tiny({"kind": "slo_search", "rates": [1, 4]})


def test_concurrency_sweep(tmp_path):
    run_dir, summary = run_experiment(tiny({"kind": "sweep", "concurrency": [2, 1]}), out_dir=tmp_path,
                                      progress=False)
    assert summary["sweep"]["axis"] == "concurrency" and summary["sweep"]["rates"] == ["1", "2"]
    records = [json.loads(x) for x in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert sorted({r["rate"] for r in records}) == ["1", "2"] and len(records) == 6
