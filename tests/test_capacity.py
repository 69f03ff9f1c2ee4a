"""Capacity search and load shapes: SLO bisection, rate with max-concurrency, duration-bounded runs,
concurrency sweeps."""
import json
import math

import pytest

from testbed.capacity import bisect_rate, crossing_rate
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
    assert 3.0 / 1.03 <= found <= 3.0 and len(points) == 9 and calls[:2] == [16, 2.0]
    assert 0.25 not in calls                  # a probe above it met: the slow low end is never run


def test_bisection_reports_the_bracket_ends():
    assert bisect_rate(lambda r: 1.0, 1, 8, 5, 0.9) == (8, [(8, 1.0)])
    found, points = bisect_rate(lambda r: 0.0, 1, 8, 5, 0.9)
    assert found is None and len(points) == 7 and points[-1][0] == 1      # the low end, last
    found, points = bisect_rate(lambda r: 1.0 if r <= 1 else 0.0, 1, 8, 3, 0.9)
    assert found == 1 and [r for r, _ in points][-1] == 1


def test_crossing_interpolates_in_log_rate_between_the_bracketing_probes():
    assert crossing_rate([(1, 1.0), (2, 0.95), (4, 0.85)], 0.9) == pytest.approx(math.sqrt(8))


def test_crossing_pools_a_rise_in_attainment_as_noise():
    # 2 -> 0.8 then 3 -> 1.0 violates monotonicity: the fit pools them to 0.9, so the crossing lies past 3
    found = crossing_rate([(4, 0.5), (1, 1.0), (3, 1.0), (2, 0.8)], 0.875)
    assert found == pytest.approx(math.exp(math.log(3) + 0.025 / 0.4 * math.log(4 / 3)))


def test_crossing_is_none_when_the_fit_does_not_cross():
    assert crossing_rate([(1, 1.0), (8, 0.95)], 0.9) is None          # met everywhere: capacity beyond
    assert crossing_rate([(1, 0.5), (8, 0.2)], 0.9) is None           # missed everywhere
    assert crossing_rate([], 0.9) is None


def smooth_search(dip_at: float | None = None):
    """A bisection over a smooth curve (48 requests a probe) crossing 90% at 1.5*e^0.2 = 1.832 req/s;
    `dip_at`: the probe at that rate reads 4 points low, as one slow pass would."""
    def measure(rate):
        share = round(min(1.0, 1 - 0.5 * math.log(rate / 1.5)) * 48) / 48
        return share - 0.04 if dip_at is not None and math.isclose(rate, dip_at) else share
    found, points = bisect_rate(measure, 1, 6, 4, 0.9)
    return found, crossing_rate(points, 0.9)


def test_crossing_is_off_the_bisection_grid_and_moves_less_than_the_last_met_probe():
    true = 1.5 * math.exp(0.2)
    found, crossing = smooth_search()
    assert abs(crossing / true - 1) < 0.01 < abs(found / true - 1)    # the grid's last step is 12%
    dipped_found, dipped_crossing = smooth_search(dip_at=found)       # that probe now misses
    assert dipped_found < found
    assert abs(dipped_crossing / crossing - 1) < abs(dipped_found / found - 1)


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
    assert cap["max_rate_per_repeat"] == [None] and len(cap["searches"][0]["points"]) == 4
    assert cap["rate_at_target_per_repeat"] == [None]
    assert "lower rates[0]" in cap["searches"][0]["note"]
    assert (run_dir / "plots" / "capacity_hf.png").read_bytes()[:4] == b"\x89PNG"
    report = (run_dir / "report.md").read_text()
    assert "## SLO search" in report and "| not bracketed | none in bracket |" in report
    assert summary["sweep"]["rates"] == ["2", "7.95271", "31.6228", "500"]    # each probe is a point of the curve


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


def test_capacity_plot_and_report_show_both_answers(tmp_path):
    from testbed.capacity import capacity_entry, capacity_plot, capacity_summary
    from testbed.report.markdown import capacity_lines
    entry = capacity_entry(2, [(4, 0.85), (1, 1.0), (2, 0.95)], 0.9, 1, 4)
    assert entry["rate_at_target"] == pytest.approx(math.sqrt(8))
    assert capacity_plot("paged", entry, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    row = [x for x in capacity_lines({"capacity": capacity_summary({"paged": [entry]})}) if x.startswith("| paged")]
    assert row == ["| paged | 2.83 | 2 | 90% | 3 |"]
