"""Metric formulas against hand-computed values on small synthetic records (DESIGN §4)."""
import time

import numpy as np
import pytest
import torch

from testbed.config import SloConfig
from testbed.metrics import cost, latency, memory
from testbed.metrics.memory import MemoryTracker
from testbed.metrics.stats import ratio_ci
from testbed.metrics.summary import add_ratios, by_category, summarize_arm, token_share_top


def rec(times, arrival=0.2, status="ok", prompt=10, arm="a", category="lookup", correct=True, rid="r0", **kw):
    out = {"arm": arm, "repeat": 0, "request_id": rid, "item_id": rid, "category": category, "model": "m",
           "status": status, "error": None if status == "ok" else "boom",
           "finish_reason": "stop" if status == "ok" else "error", "prompt_tokens": prompt,
           "output_tokens": len(times), "arrival_s": arrival, "first_token_s": times[0] if times else None,
           "finish_s": times[-1] if times else None, "token_times_s": list(times), "output_text": "x",
           "scorer": "contains", "scores": {"exact": 0.0, "f1": 0.5, "contains": float(correct)},
           "score": float(correct), "correct": correct, "match_baseline": None, "stats": {}}
    out.update(kw)
    return out


R1 = rec([1.0, 1.5, 2.5])              # ttft 800, e2el 2300, tpot 750, itl [500, 1000]


def test_hand_computed_request_latencies():
    assert latency.ttft_ms(R1) == pytest.approx(800)
    assert latency.e2el_ms(R1) == pytest.approx(2300)
    assert latency.tpot_ms(R1) == pytest.approx(750)
    assert latency.itl_ms(R1) == pytest.approx([500, 1000])


def test_one_token_output_has_no_tpot_and_no_itl():
    one = rec([0.7], arrival=0.5)
    assert latency.ttft_ms(one) == pytest.approx(200) and latency.tpot_ms(one) is None
    assert latency.itl_ms(one) == []


def test_speculative_steps_give_zero_gaps_pooled_over_requests():
    spec = rec([1.0, 1.0, 1.0, 1.4], arrival=0.0)
    values = latency.latency_values([R1, spec, rec([], status="failed")])
    assert values["itl_ms"] == pytest.approx([500, 1000, 0, 0, 400])
    assert values["tpot_ms"] == pytest.approx([750, 400 / 3])
    assert len(values["ttft_ms"]) == 2                     # the failed request is left out


def test_percentiles_are_numpys():
    vals = [1, 2, 3, 4, 100]
    p = latency.percentiles(vals)
    assert p == pytest.approx({"mean": 22.0, "p50": 3.0, "p90": np.percentile(vals, 90), "p99": np.percentile(vals, 99)})
    assert p["p90"] == pytest.approx(4 + 0.6 * 96)          # linear interpolation: 61.6
    assert latency.percentiles([]) == {}


def test_goodput_counts_requests_meeting_every_slo():
    fast = rec([0.3, 0.4], arrival=0.0)                    # ttft 300, tpot 100, e2el 400
    slow_first = rec([0.9, 1.0], arrival=0.0)              # ttft 900
    slow_decode = rec([0.3, 2.3], arrival=0.0)             # tpot 2000
    recs = [fast, slow_first, slow_decode, rec([], status="failed")]
    assert latency.goodput(recs, SloConfig(ttft_ms=500), wall_s=2.0) == pytest.approx(1.0)   # 2 of 4 in 2 s
    assert latency.goodput(recs, SloConfig(ttft_ms=500, tpot_ms=500), wall_s=2.0) == pytest.approx(0.5)
    assert latency.goodput(recs, SloConfig(), wall_s=2.0) is None
    assert latency.goodput(recs, None, wall_s=2.0) is None


def test_cost_formulas():
    # $3.60/h for 100 s = $0.10; 50,000 tokens -> $2 per million; 4 successes -> $0.025 each
    assert cost.cost_per_million_output_tokens_usd(3.6, 100, 50_000) == pytest.approx(2.0)
    assert cost.cost_per_success_usd(3.6, 100, 4) == pytest.approx(0.025)
    assert cost.cost_per_success_usd(3.6, 100, 0) is None
    assert cost.cost_per_million_output_tokens_usd(3.6, 100, 0) is None
    assert cost.cost_per_success_usd(0.0, 100, 4) == 0.0


def _arm(match=None):
    recs = [rec([1.0, 1.5, 2.5], rid="r0", match_baseline=match),
            rec([0.5, 0.6], arrival=0.0, prompt=90, rid="r1", correct=False, match_baseline=match),
            rec([], status="failed", prompt=0, rid="r2", scores={}, correct=False, match_baseline=None)]
    return recs


def test_summarize_arm_hand_computed():
    s = summarize_arm(_arm(), wall_s=4.0, engine_stats={"kv_waste_pct": 2.5}, memory={"peak_memory_mb": 100.0},
                      usd_per_hour=3.6, slo=None)
    assert (s["n_requests"], s["n_ok"], s["n_failed"], s["duration_s"]) == (3, 2, 1, 4.0)
    assert s["request_throughput"] == pytest.approx(0.5)
    assert s["output_throughput"] == pytest.approx(5 / 4)
    assert s["total_token_throughput"] == pytest.approx((10 + 3 + 90 + 2) / 4)
    assert s["ttft_ms_mean"] == pytest.approx((800 + 500) / 2)
    assert s["e2el_ms_p50"] == pytest.approx((2300 + 600) / 2)
    assert s["tpot_ms_mean"] == pytest.approx((750 + 100) / 2)
    assert s["itl_ms_p50"] == pytest.approx(500)               # pooled [500, 1000, 100]
    assert s["prompt_tokens_mean"] == 50 and s["output_tokens_mean"] == 2.5
    assert s["quality_accuracy"] == pytest.approx(1 / 3)       # failed request counts as wrong
    assert s["quality_f1"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert s["cost_per_success_usd"] == pytest.approx(0.004)   # $0.004 for the arm, one correct answer
    assert s["cost_per_million_output_tokens_usd"] == pytest.approx(0.004 / 5 * 1e6)
    assert s["token_share_top10pct"] == pytest.approx(92 / 105)
    assert s["kv_waste_pct"] == 2.5 and s["peak_memory_mb"] == 100.0


def test_quality_accuracy_is_first_quality_key_and_absent_metrics_are_absent():
    s = summarize_arm(_arm(), wall_s=4.0, engine_stats={}, memory={}, usd_per_hour=1.0, slo=None)
    quality = [k for k in s if k.startswith("quality_")]
    assert quality[0] == "quality_accuracy"
    for absent in ("goodput", "match_rate_vs_baseline", "quality_json_valid", "peak_memory_mb", "spec_acceptance_rate"):
        assert absent not in s


def test_all_failed_arm_has_no_latency_and_no_cost_per_success():
    s = summarize_arm([rec([], status="failed", scores={}, correct=False)], wall_s=1.0, usd_per_hour=1.0)
    assert s["n_failed"] == 1 and s["quality_accuracy"] == 0.0
    assert not any(k.startswith(("ttft", "tpot", "itl", "e2el")) for k in s)
    assert "cost_per_success_usd" not in s and "output_tokens_mean" not in s


def test_goodput_and_match_rate_when_they_apply():
    recs = _arm(match=True)
    recs[1]["match_baseline"] = False
    s = summarize_arm(recs, wall_s=4.0, slo=SloConfig(ttft_ms=600))
    assert s["goodput"] == pytest.approx(1 / 4)                # only r1 (ttft 500) meets 600 ms
    assert s["match_rate_vs_baseline"] == 0.5                  # r2 not compared


def test_json_quality_keys_only_over_json_items():
    j = rec([1.0], scorer="json", rid="j", scores={"exact": 0, "f1": 0, "contains": 0, "json_valid": 1.0, "json_fields": 0.5})
    s = summarize_arm([R1, j], wall_s=1.0)
    assert s["quality_json_valid"] == 1.0 and s["quality_json_fields"] == 0.5


def test_token_share_top10pct():
    recs = [rec([1.0], prompt=p - 1) for p in [100] + [10] * 19]   # 20 requests: top 2 hold 110 of 290
    assert token_share_top(recs) == pytest.approx(110 / 290)
    assert token_share_top([]) is None


def test_add_ratios():
    arms = {"base": {"output_throughput": 10.0, "ttft_ms_p90": 200.0, "peak_memory_mb": 0.0, "quality_accuracy": 0.5},
            "fast": {"output_throughput": 25.0, "ttft_ms_p90": 100.0, "peak_memory_mb": 50.0, "quality_accuracy": 0.5}}
    add_ratios(arms, "base")
    assert arms["fast"]["output_throughput_vs_baseline"] == pytest.approx(2.5)
    assert arms["fast"]["ttft_ms_p90_vs_baseline"] == pytest.approx(0.5)
    assert arms["base"]["output_throughput_vs_baseline"] == 1.0
    assert "peak_memory_mb_vs_baseline" not in arms["fast"]       # baseline 0: no ratio
    assert "quality_accuracy_vs_baseline" not in arms["fast"]
    assert "tpot_ms_p50_vs_baseline" not in arms["fast"]          # missing on both sides


def test_by_category():
    recs = [R1, rec([0.5], arrival=0.0, category="json", correct=False, prompt=4, rid="r9")]
    cats = by_category(recs)
    assert set(cats) == {"lookup", "json"}
    assert cats["lookup"]["n"] == 1 and cats["lookup"]["quality_accuracy"] == 1.0
    assert cats["lookup"]["ttft_ms_p90"] == pytest.approx(800)
    assert cats["json"]["token_share"] == pytest.approx(5 / 18)


def test_ratio_ci_paired_and_independent():
    base = {f"r{i}": 1.0 for i in range(20)}
    arm = {f"r{i}": (1.0 if i < 15 else 0.0) for i in range(20)}
    ci = ratio_ci(arm, base)
    assert ci["paired"] and ci["estimate"] == pytest.approx(0.75)
    assert ci["ci_low"] < 0.75 < ci["ci_high"] <= 1.0
    assert ratio_ci(arm, base) == ci                             # seeded
    indep = ratio_ci([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert not indep["paired"] and indep["estimate"] == indep["ci_low"] == indep["ci_high"] == 2.0
    assert ratio_ci([1.0], [0.0, 0.0])["estimate"] is None        # undefined ratio
    assert ratio_ci([0.5, 0.7], [0.5, 0.5], kind="diff")["estimate"] == pytest.approx(0.1)


def test_memory_tracker_sees_an_allocation():
    with MemoryTracker("cpu") as mem:
        start = mem.peak_mb
        block = np.ones(64 * 1024 * 1024 // 8)                   # 64 MB, touched
        time.sleep(0.05)
        del block
    assert mem.peak_mb >= start + 50
    assert set(mem.as_metrics()) == {"peak_memory_mb"}


def test_memory_tracker_reports_the_cuda_allocator_peak_when_read_inside_the_block(monkeypatch):
    """The runner reads an arm's figures inside the block, so an interrupted arm keeps them; on CUDA
    the allocator's peak was only read on exit and never reached a summary (seen on an H200)."""
    allocated = {"bytes": 0}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a, **k: allocated.update(bytes=0))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: allocated["bytes"])
    monkeypatch.setattr(memory, "_nvml_handle", lambda index: None)
    with MemoryTracker("cuda") as mem:
        allocated["bytes"] = 300 * memory.MB
        inside = mem.as_metrics()
    assert inside["gpu_max_allocated_mb"] == 300
    allocated["bytes"] = 500 * memory.MB
    assert mem.as_metrics()["gpu_max_allocated_mb"] == 300          # after the block: the peak at its end


def test_memory_tracker_lists_child_processes_once_a_second_not_every_sample(monkeypatch):
    """Listing children scans all of /proc (~2 ms of CPU); at every 10 ms sample that took 17% of a core
    from the server a client run was measuring. RSS is still read every sample."""
    calls = {"children": 0, "rss": 0}
    real_children, real_info = memory.psutil.Process.children, memory.psutil.Process.memory_info

    def children(self, *a, **k):
        calls["children"] += 1
        return real_children(self, *a, **k)

    def memory_info(self):
        calls["rss"] += 1
        return real_info(self)
    monkeypatch.setattr(memory.psutil.Process, "children", children)
    monkeypatch.setattr(memory.psutil.Process, "memory_info", memory_info)
    with MemoryTracker("cpu", interval_s=0.01, children_every_s=1.0):
        time.sleep(0.5)
    assert calls["rss"] >= 10 and calls["children"] <= 2
