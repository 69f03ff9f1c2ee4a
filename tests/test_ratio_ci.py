"""Paired bootstrap intervals on the _vs_baseline ratios: a real 2x difference is told apart from 1.0,
identical arms are not, and pairing removes item difficulty from the interval."""
import warnings
from types import SimpleNamespace

import numpy as np

from testbed.config import SloConfig
from testbed.metrics.ratio_ci import add_ratio_cis, distinguishable, paired_quality, quality_cis
from testbed.metrics.summary import add_ratios, summarize_arm


def _rec(item, ttft_s, n_tokens, gap_s, correct=True, match=None):
    times = [ttft_s + k * gap_s for k in range(n_tokens)]
    return {"item_id": item, "request_id": item, "status": "ok", "arrival_s": 0.0, "first_token_s": times[0],
            "finish_s": times[-1], "token_times_s": times, "prompt_tokens": 100, "output_tokens": n_tokens,
            "correct": correct, "scores": {"exact_match": float(correct)}, "scorer": "exact_match",
            "match_baseline": match}


def _runs(scale, rng, n_items=24, block=4, wrong=()):
    """Blocks of `block` items; item difficulty (its TTFT) varies 10x across items, and `scale` slows every step."""
    runs = []
    for b in range(n_items // block):
        recs = []
        for i in range(b * block, (b + 1) * block):
            hard = 0.05 * (1 + i % 10)                      # the same for both arms: paired away
            recs.append(_rec(f"q{i}", scale * hard * rng.uniform(0.95, 1.05), 8, scale * 0.01 * rng.uniform(0.9, 1.1),
                             correct=f"q{i}" not in wrong, match=True))
        wall = max(r["finish_s"] for r in recs) * rng.uniform(0.97, 1.03)
        runs.append(SimpleNamespace(repeat=0, rate=None, block=b, records=recs, wall_s=wall,
                                    memory={"peak_memory_mb": 500.0 * rng.uniform(0.99, 1.01)}))
    return runs


def _summaries(runs, slo=None):
    arms = {a: summarize_arm([r for run in rs for r in run.records], sum(run.wall_s for run in rs),
                             memory={"peak_memory_mb": max(run.memory["peak_memory_mb"] for run in rs)}, slo=slo)
            for a, rs in runs.items()}
    add_ratios(arms, "base")
    add_ratio_cis(arms, runs, "base", slo)
    return arms


def test_a_2x_slower_arm_is_distinguishable_and_an_identical_one_is_not():
    rng = np.random.default_rng(1)
    slo = SloConfig(ttft_ms=400)
    arms = _summaries({"base": _runs(1.0, rng), "same": _runs(1.0, rng), "slow": _runs(2.0, rng)}, slo)
    slow, same = arms["slow"], arms["same"]
    for key in ("output_throughput_vs_baseline", "request_throughput_vs_baseline"):
        assert slow[key + "_ci_high"] < 0.6 and distinguishable(slow, key)
        assert distinguishable(same, key) is False
    for key in ("ttft_ms_p50_vs_baseline", "ttft_ms_mean_vs_baseline", "itl_ms_p90_vs_baseline", "e2el_ms_p99_vs_baseline"):
        assert slow[key + "_ci_low"] > 1.6, key
        assert same[key + "_ci_low"] <= 1.0 <= same[key + "_ci_high"], key
    assert "goodput_vs_baseline_ci_low" in slow and "peak_memory_mb_vs_baseline_ci_low" in same
    assert distinguishable(same, "peak_memory_mb_vs_baseline") is False
    assert slow["ci_blocks"] == 6
    assert "output_throughput_vs_baseline_ci_low" not in arms["base"]        # the baseline's ratio is 1 by definition


def test_pairing_keeps_item_difficulty_out_of_the_interval():
    """TTFT varies 10x across items; paired, a uniform 10% slowdown still reads as a narrow interval near 1.1."""
    rng = np.random.default_rng(2)
    arms = _summaries({"base": _runs(1.0, rng), "slower": _runs(1.1, rng)})
    lo, hi = arms["slower"]["ttft_ms_mean_vs_baseline_ci_low"], arms["slower"]["ttft_ms_mean_vs_baseline_ci_high"]
    assert 1.0 < lo < 1.1 < hi < 1.2


def test_quality_loss_beyond_the_interval_and_per_arm_quality_intervals():
    rng = np.random.default_rng(3)
    wrong = {f"q{i}" for i in range(0, 24, 2)}                 # half the items wrong where the baseline is right
    arms = _summaries({"base": _runs(1.0, rng), "worse": _runs(1.0, rng, wrong=wrong),
                       "one_off": _runs(1.0, rng, wrong={"q3"})})
    w = arms["worse"]
    assert w["quality_accuracy_diff_vs_baseline"] == -0.5
    assert w["quality_accuracy_diff_vs_baseline_ci_high"] < 0 and distinguishable(w, "quality_accuracy_diff_vs_baseline")
    assert distinguishable(arms["one_off"], "quality_accuracy_diff_vs_baseline") is False   # one item: noise
    assert w["quality_accuracy_ci_low"] < 0.5 < w["quality_accuracy_ci_high"]
    assert arms["base"]["quality_accuracy_ci_low"] == arms["base"]["quality_accuracy_ci_high"] == 1.0
    assert w["match_rate_vs_baseline_ci_low"] == 1.0


def test_quality_intervals_do_not_depend_on_the_order_requests_finished_in():
    # interleaved blocks change the order a continuous-batching arm finishes its requests in; the item's
    # place in the bootstrap draw must not follow it
    recs = [_rec(f"q{i}", 0.1, 4, 0.01, correct=i % 3 != 0, match=i % 4 != 0) for i in range(12)]
    base = [_rec(f"q{i}", 0.1, 4, 0.01, correct=i % 2 == 0) for i in range(12)]
    shuffled = [recs[i] for i in np.random.default_rng(0).permutation(12)]
    assert quality_cis(shuffled) == quality_cis(recs)
    assert paired_quality(shuffled, base) == paired_quality(recs, base)


def test_one_block_gives_no_throughput_interval():
    rng = np.random.default_rng(4)
    arms = _summaries({"base": _runs(1.0, rng, block=24), "b": _runs(1.0, rng, block=24)})
    assert "output_throughput_vs_baseline" in arms["b"] and "output_throughput_vs_baseline_ci_low" not in arms["b"]
    assert distinguishable(arms["b"], "output_throughput_vs_baseline") is None
    assert "ttft_ms_p50_vs_baseline_ci_low" in arms["b"]       # items still give latency intervals


def test_nan_percentile_matches_numpy():
    from testbed.metrics.ratio_ci import nan_percentile
    x = np.random.default_rng(5).normal(size=(50, 30))
    x[x > 1.2] = np.nan
    x[3] = np.nan
    for q in (50, 90, 99):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = np.nanpercentile(x, q, axis=-1)
        np.testing.assert_allclose(nan_percentile(x, q), want, equal_nan=True)


def _at(runs, rate):
    for run in runs:
        run.rate = rate
    return runs


def test_an_arm_searched_at_other_rates_is_compared_only_where_both_ran():
    """An SLO search probes different rates per arm: the baseline here also ran a slow low-rate pass the arm did
    not, which pooled would make the arm look ~2x better than where both ran; the ratio and its interval both
    read the shared passes, so the point lies in its own interval."""
    from testbed.metrics.summary import ratios_on_shared_passes
    rng = np.random.default_rng(3)
    runs = {"base": _at(_runs(1.0, rng), 4.0) + _at(_runs(3.0, rng), 1.0), "fast": _at(_runs(0.5, rng), 4.0)}

    def pool(rs):
        return summarize_arm([r for run in rs for r in run.records], sum(run.wall_s for run in rs),
                             memory={"peak_memory_mb": max(run.memory["peak_memory_mb"] for run in rs)})
    arms = {a: pool(rs) for a, rs in runs.items()}
    add_ratios(arms, "base")
    pooled = arms["fast"]["output_throughput_vs_baseline"]
    ratios_on_shared_passes(arms, runs, "base", pool)
    add_ratio_cis(arms, runs, "base")
    fast = arms["fast"]
    key = "output_throughput_vs_baseline"
    assert pooled > 3.0 and 1.7 < fast[key] < 2.3 and fast["ratio_passes"] == 6
    assert fast[key + "_ci_low"] <= fast[key] <= fast[key + "_ci_high"]
    assert fast["ttft_ms_p50_vs_baseline_ci_low"] <= fast["ttft_ms_p50_vs_baseline"] <= fast["ttft_ms_p50_vs_baseline_ci_high"]
    assert "ratio_passes" not in arms["base"]
