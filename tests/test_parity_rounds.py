"""testbed/metrics/parity_rounds.py: per-round differences, the drift flag and the goals'
verdicts, on synthetic pass records shaped like scripts/bench_parity.py's parity.json."""
import pytest

from testbed.metrics.parity import compare
from testbed.metrics.parity_rounds import (TPOT_PAIRED, TTFT_PAIRED, flag_drifted, pool, render, round_rels,
                                           summarise, t_interval, verdict)


def passes(server_ttft: list[tuple[float, float]]) -> list[dict]:
    """ABBA passes with the server's own TTFT mean given per round as (vLLM pass, testbed pass)."""
    out = []
    for rnd, (v, t) in enumerate(server_ttft):
        pair = [{"round": rnd, "client": "vllm", "server_ttft_ms_mean": v},
                {"round": rnd, "client": "testbed", "server_ttft_ms_mean": t}]
        out += pair if rnd % 2 == 0 else pair[::-1]
    return out


def row(metric: str, vllm: list, testbed: list) -> dict:
    return {"metric": metric, "vllm": None, "testbed": None, "rel": None, "vllm_rounds": vllm, "testbed_rounds": testbed}


def test_flag_drifted_marks_only_passes_beyond_the_tolerance_of_the_median():
    p = passes([(80.0, 80.0), (80.0, 87.0), (80.0, 80.0), (97.6, 71.0)])   # median 80
    flags = {(f["round"], f["client"]): f for f in flag_drifted(p)}
    assert flags[(3, "vllm")]["drifted"] and flags[(3, "vllm")]["server_ttft_off"] == pytest.approx(0.22)
    assert flags[(3, "testbed")]["drifted"]                               # -11.25%: slower and faster both count
    assert not flags[(1, "testbed")]["drifted"]                           # +8.75%
    assert [f["drifted"] for f in flag_drifted(p, tol=0.25)] == [False] * 8


def test_a_pass_without_the_servers_ttft_is_never_flagged():
    p = [{"round": 0, "client": "vllm", "server_ttft_ms_mean": None},
         {"round": 0, "client": "testbed", "server_ttft_ms_mean": 80.0}]
    assert [f["drifted"] for f in flag_drifted(p)] == [False, False]


def test_t_interval_over_rounds_matches_students_t_by_hand():
    s = t_interval([0.01, 0.03, None])               # a round without the metric is left out
    # mean 0.02, sd 0.01414, sem 0.01, t(0.975, df=1) = 12.706
    assert (s["n"], s["mean"], s["median"]) == (2, pytest.approx(0.02), pytest.approx(0.02))
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(0.02 - 0.12706, abs=1e-5), pytest.approx(0.02 + 0.12706, abs=1e-5))
    assert t_interval([0.04])["ci_low"] is None and t_interval([])["mean"] is None


def test_verdict_tells_a_resolved_goal_from_a_mean_inside_a_wide_interval():
    assert verdict({"mean": 0.01, "ci_low": -0.02, "ci_high": 0.04}, 0.05) == "met"
    assert verdict({"mean": 0.01, "ci_low": -0.08, "ci_high": 0.10}, 0.05) == "mean met"
    assert verdict({"mean": 0.01, "ci_low": -0.08, "ci_high": 0.04}, 0.05) == "mean met"   # low side only
    assert verdict({"mean": 0.01, "ci_low": -0.02, "ci_high": 0.06}, 0.05) == "mean met"   # high side only
    assert verdict({"mean": -0.06, "ci_low": -0.07, "ci_high": -0.05}, 0.05) == "not met"
    assert verdict({"mean": None, "ci_low": None, "ci_high": None}, 0.05) == "no data"
    assert verdict({"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6}, None) is None


def test_round_rels_pairs_round_k_with_round_k_and_scales_paired_ttft_by_vllms_p50():
    rows = [row("TTFT p50", [80.0, None, 100.0], [84.0, 90.0, 95.0])]
    tpot_pairs = [{"tpot_rel_p50": 0.01}, {}, {"tpot_rel_p50": -0.02}]
    ttft_pairs = [{"ttft_diff_ms_p50": 2.0}, {"ttft_diff_ms_p50": 1.0}, {"ttft_diff_ms_p50": -5.0}]
    r = round_rels(rows, tpot_pairs, ttft_pairs)
    assert r["TTFT p50"] == [pytest.approx(0.05), None, pytest.approx(-0.05)]
    assert r[TPOT_PAIRED] == [0.01, None, -0.02]
    assert r[TTFT_PAIRED] == [pytest.approx(0.025), None, pytest.approx(-0.05)]


def test_compare_keeps_rounds_aligned_when_a_pass_lacks_a_metric():
    rows = compare([{"median_ttft_ms": 80.0}, {}], [{"ttft_from_send_ms_p50": 84.0}, {"ttft_from_send_ms_p50": 90.0}])
    ttft = next(r for r in rows if r["metric"] == "TTFT p50")
    assert ttft["vllm_rounds"] == [80.0, None] and ttft["testbed_rounds"] == [84.0, 90.0]
    assert ttft["rel"] == pytest.approx(87.0 / 80.0 - 1)


def test_one_drifted_pass_fails_the_goal_over_all_rounds_and_not_over_the_rest():
    # The clients agree in every round but round 1, where vLLM's pass met a server 50% slower by its own clock.
    rows = [row("TTFT p50", [80.0, 120.0, 81.0, 79.0], [80.0, 80.0, 81.0, 79.0]),
            row("TPOT p50", [40.0, 41.0, 40.5, 39.5], [40.4, 41.4, 40.9, 39.9])]
    s = summarise(rows, passes([(78.0, 79.0), (120.0, 80.0), (80.0, 81.0), (79.0, 78.0)]), [], [])
    assert s["flagged_rounds"] == [1]
    ttft = next(m for m in s["metrics"] if m["metric"] == "TTFT p50")
    assert ttft["all"]["mean"] == pytest.approx(-1 / 3 / 4) and ttft["verdict_all"] == "not met"
    assert ttft["kept"]["n"] == 3 and ttft["kept"]["mean"] == pytest.approx(0.0) and ttft["verdict_kept"] == "met"
    tpot = next(m for m in s["metrics"] if m["metric"] == "TPOT p50")   # testbed +1% in each round, all rounds
    assert tpot["all"]["mean"] == pytest.approx(0.01, abs=2e-4) and tpot["verdict_all"] == "met"
    text = render(s)
    assert "flagged rounds: [1]" in text and text.count("DRIFTED") == 1


def run(ttft_vllm: list, ttft_testbed: list, server_ttft: list[tuple[float, float]]) -> dict:
    """One server's entry of a parity.json, as bench_parity.py writes it."""
    return {"rows": [row("TTFT p50", ttft_vllm, ttft_testbed)], "passes": passes(server_ttft),
            "per-request TPOT testbed/vLLM - 1 (paired)": [{"tpot_rel_p50": 0.0}] * len(ttft_vllm),
            "per-request TTFT testbed - vLLM ms (paired, same round)": [{"ttft_diff_ms_p50": 1.0}] * len(ttft_vllm)}


def test_pool_concatenates_rounds_and_keeps_each_runs_drift_rule_to_its_own_passes():
    # Run b is on a server 30% slower throughout: against a median over both runs, one run's passes
    # would all be flagged; against its own median, only b's round 1 (+20% off b's median) is.
    a = run([100.0, 102.0], [101.0, 103.0], [(100.0, 100.0), (101.0, 101.0)])
    b = run([130.0, 133.0, 131.0], [130.0, 126.35, 131.0], [(130.0, 130.0), (156.0, 130.0), (131.0, 131.0)])
    s = pool([a, b])
    assert s["flagged_rounds"] == [3]
    ttft = s["metrics"][0]
    assert ttft["rounds"] == pytest.approx([0.01, 1 / 102, 0.0, -0.05, 0.0])
    assert ttft["kept"]["n"] == 4 and ttft["pooled"] == pytest.approx((101 + 103 + 130 + 126.35 + 131) / 5
                                                                     / ((100 + 102 + 130 + 133 + 131) / 5) - 1)
    paired = next(m for m in s["metrics"] if m["metric"] == TTFT_PAIRED)
    assert paired["all"]["n"] == 5                      # every run's per-request pairs, in round order
    one_run = summarise(a["rows"], a["passes"], a["per-request TPOT testbed/vLLM - 1 (paired)"],
                        a["per-request TTFT testbed - vLLM ms (paired, same round)"])
    drop = lambda ms: [{k: v for k, v in m.items() if k != "pooled"} for m in ms]  # noqa: E731 (row() has no means)
    assert drop(pool([a])["metrics"]) == drop(one_run["metrics"])     # one run pooled is that run


def test_pool_refuses_runs_that_compare_different_metrics():
    a = run([100.0], [101.0], [(100.0, 100.0)])
    b = {**a, "rows": [row("TPOT p50", [20.0], [20.0])]}
    with pytest.raises(ValueError, match="different metrics"):
        pool([a, b])
