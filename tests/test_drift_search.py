"""The drift check under an SLO search, on a simulated machine: the real Searches and round order drive
probes whose throughput follows the offered rate and the machine's speed at the time the probe runs."""
from types import SimpleNamespace

import numpy as np
import pytest

from testbed.capacity import Searches
from testbed.metrics.drift import baseline_drift, drift_summary
from testbed.report.drift import drift_section
from testbed.schedule import search_round

ARMS, CAPACITY = ["static", "paged"], {"static": 0.5, "paged": 2.3}     # req/s each arm sustains at full speed
TOKENS = 600            # output tokens per probe


def simulate(order: str, speed, repeats: int = 2, seed: int = 0) -> dict[str, list]:
    """Every (arm, repeat) search run to its end in `order`; each probe an ArmRun-like pass. `speed(i)` is
    the machine's speed at the i-th probe of the run: throughput is min(rate, capacity x speed) x tokens per request,
    with 2% noise; attainment falls as the rate passes the capacity."""
    rng, runs, clock = np.random.default_rng(seed), {a: [] for a in ARMS}, [0]

    def measure(key, rate):
        arm, repeat = key
        served = min(rate, CAPACITY[arm] * speed(clock[0])) * rng.normal(1, 0.02)
        runs[arm].append(SimpleNamespace(repeat=repeat, rate=rate, block=0, started=clock[0],
                                         wall_s=TOKENS / (10 * served),
                                         records=[{"status": "ok", "output_tokens": TOKENS}]))
        clock[0] += 1
        return 1.0 if rate <= CAPACITY[arm] * speed(clock[0] - 1) else 0.5

    search = Searches([(a, r) for r in range(repeats) for a in ARMS], 0.25, 8, 4, 0.9)
    if order == "sequential":
        search.one_by_one(measure)
    else:
        search.lockstep(measure, lambda k: search_round(ARMS, repeats, k))
    return runs


def steady(i: int) -> float:
    return 1.0


def slowing(i: int) -> float:      # the machine loses 40% of its speed over the ~20 probes of the run
    return max(0.6, 1.0 - 0.02 * i)


def test_sequential_search_flags_a_slowdown_and_clears_a_steady_machine():
    _, slow = drift_summary(simulate("sequential", slowing), "static")
    assert slow["per_rate"] and slow["moved"] < -0.15 and slow["warning"]      # repeat 1's probes ran later
    _, calm = drift_summary(simulate("sequential", steady), "static")
    assert abs(calm["moved"]) < 0.05 and not calm["warning"]


def test_lockstep_search_says_its_drift_is_not_measurable_rather_than_zero():
    for speed in (slowing, steady):
        _, drift = drift_summary(simulate("interleaved", speed), "static")
        assert "moved" not in drift and "warning" not in drift         # no figure that reads as a clean bill
        assert "in the same round" in drift["not_measurable"]
    lines = "\n".join(drift_section({"baseline": "static", "arms": {"static": {}}, "drift": drift,
                                     "order": {"order": "interleaved", "text": "Order: **interleaved**."}}))
    assert "Baseline drift: not measurable for this run, because the baseline's passes at any one rate" in lines


def test_one_repeat_search_has_no_rate_run_twice():
    drift = baseline_drift(simulate("sequential", slowing, repeats=1)["static"])
    assert "each offered rate once" in drift["not_measurable"] and "moved" not in drift


def run(rate, started, tok_s):      # one pass of 10 output tokens taking 10/tok_s seconds
    return SimpleNamespace(repeat=0, rate=rate, block=started, started=started, wall_s=10 / tok_s,
                           records=[{"status": "ok", "output_tokens": 10}])


def test_only_pairs_a_third_of_the_run_apart_count():
    # rate 8's two passes are 4 of 6 apart, rate 1.4's only 1: the near pair (which would read -50%) is left out
    runs = [run(8, 0, 40), run(1.4, 1, 20), run(1.4, 2, 10), run(0.5, 3, 8), run(8, 4, 30), run(0.7, 5, 11)]
    d = baseline_drift(runs)
    assert d["blocks_compared"] == 1 and d["moved"] == pytest.approx(-0.25)
    assert d["baseline_first"] == pytest.approx(40 / 35) and d["baseline_last"] == pytest.approx(30 / 35)


def test_every_rate_weighs_alike_whatever_its_throughput():
    # a sweep's two repeats: 8 req/s went x0.8, 0.5 req/s x1.25; pooled tokens would read -19%, the pairs cancel
    runs = [run(8, 0, 100), run(0.5, 1, 5), run(8, 2, 80), run(0.5, 3, 6.25)]
    assert baseline_drift(runs)["moved"] == pytest.approx(0)
