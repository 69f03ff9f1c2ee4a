"""The decision at the top of every report: Pareto front, the arm to deploy, quality losers, SLO misses, verdict."""
from testbed.report.decision import decide, decision_html, decision_lines, pareto_front


def _arm(acc, tok_s, cost, thr_ci=None, q_ci=None, goodput_share=None, n=20):
    row = {"n_requests": n, "duration_s": 10.0, "quality_accuracy": acc, "output_throughput": tok_s,
           "cost_per_success_usd": cost}
    if thr_ci:
        row.update(output_throughput_vs_baseline=thr_ci[0], output_throughput_vs_baseline_ci_low=thr_ci[1],
                   output_throughput_vs_baseline_ci_high=thr_ci[2])
    if q_ci:
        row.update(quality_accuracy_diff_vs_baseline=q_ci[0], quality_accuracy_diff_vs_baseline_ci_low=q_ci[1],
                   quality_accuracy_diff_vs_baseline_ci_high=q_ci[2])
    if goodput_share is not None:
        row["goodput"] = goodput_share * n / 10.0
    return row


def _diag(**arms):
    return {"arms": {a: {"failures": f, "requests": 20, "model_share_of_classed": s} for a, (f, s) in arms.items()}}


def test_pareto_front_drops_only_dominated_arms():
    arms = {"a": _arm(0.5, 10, 1.0), "b": _arm(0.5, 20, 0.5), "c": _arm(0.9, 5, 2.0), "d": _arm(0.4, 15, 0.9)}
    assert pareto_front(arms) == ["b", "c"]          # a and d lose to b on every axis


def test_deploys_the_fastest_arm_that_beats_the_baseline_beyond_its_interval():
    arms = {"base": _arm(0.5, 10, 1.0, goodput_share=1.0),
            "paged": _arm(0.5, 30, 0.33, (3.0, 2.6, 3.4), (0.0, -0.05, 0.05), goodput_share=0.95),
            "noisy": _arm(0.5, 11, 0.9, (1.1, 0.9, 1.3), (0.0, -0.05, 0.05), goodput_share=1.0),
            "lossy": _arm(0.2, 60, 0.5, (6.0, 5.0, 7.0), (-0.3, -0.5, -0.1), goodput_share=1.0),
            "late": _arm(0.5, 90, 0.1, (9.0, 8.0, 10.0), (0.0, -0.05, 0.05), goodput_share=0.5)}
    d = decide({"baseline": "base", "arms": arms, "diagnosis": _diag(paged=(10, 0.1))})
    assert d["deploy"] == "paged" and "×3.00" in d["deploy_reason"]
    assert d["quality_losers"] == ["lossy"] and d["slo_misses"] == ["late"]
    assert "late" not in d["pareto_front"] and "paged" in d["pareto_front"]
    assert d["verdict"] == "fix_the_system" and d["verdict_sentence"].startswith("Failure diagnosis of paged (10/20")
    lines = "\n".join(decision_lines({"decision": d}))
    assert "**Deploy: paged**" in lines and "**lossy**" in lines and "**late**" in lines
    assert "<b>Deploy: paged</b>" in "".join(decision_html({"decision": d}))


def test_a_gain_inside_the_noise_keeps_the_baseline_and_quality_gains_come_first():
    arms = {"base": _arm(0.5, 10, 1.0), "noisy": _arm(0.5, 11, 0.9, (1.1, 0.9, 1.3), (0.0, -0.1, 0.1))}
    d = decide({"baseline": "base", "arms": arms, "diagnosis": _diag(base=(10, 0.8))})
    assert d["deploy"] == "base" and d["verdict"] == "model_is_the_limit" and d["slo_misses"] == []
    arms["better"] = _arm(0.8, 8, 1.2, (0.8, 0.7, 0.9), (0.3, 0.1, 0.5))
    assert decide({"baseline": "base", "arms": arms})["deploy"] == "better"


def test_no_arm_meeting_the_slos_deploys_nothing():
    arms = {"base": _arm(0.5, 10, 1.0, goodput_share=0.2), "b": _arm(0.5, 20, 0.5, (2, 1.8, 2.2), goodput_share=0.5)}
    d = decide({"baseline": "base", "arms": arms})
    assert d["deploy"] is None and d["slo_misses"] == ["base", "b"] and d["verdict"] is None


def test_a_run_without_finished_arms_still_states_a_decision():
    d = decide({"baseline": "base", "arms": {}})
    assert d["deploy"] is None and d["deploy_reason"] == "no arm finished"
    assert "**Deploy: none** — no arm finished." in "\n".join(decision_lines({"decision": d}))


def test_after_an_slo_search_deploys_the_arm_with_the_highest_capacity():
    """Pooled over every probe, both arms' shares fall under 90% (overloaded probes count); the search's
    rates decide instead: median over repeats of the fitted crossing, the last met probe where it did not cross."""
    arms = {"static": _arm(0.4, 17, 1.0, goodput_share=0.5),
            "paged": _arm(0.4, 49, 0.3, (1.9, 1.7, 2.2), (0.0, 0.0, 0.0), goodput_share=0.6),
            "slow": _arm(0.4, 5, 3.0, (0.3, 0.2, 0.4), (0.0, 0.0, 0.0), goodput_share=0.1)}
    capacity = {"static": {"rate_at_target_per_repeat": [0.334, 0.604], "max_rate_per_repeat": [0.31, 0.595]},
                "paged": {"rate_at_target_per_repeat": [None, 2.29], "max_rate_per_repeat": [2.18, 2.18]},
                "slow": {"rate_at_target_per_repeat": [None], "max_rate_per_repeat": [None]}}
    d = decide({"baseline": "static", "arms": arms, "capacity": capacity})
    assert d["deploy"] == "paged" and "2.24 req/s" in d["deploy_reason"] and "static 0.469" in d["deploy_reason"]
    assert d["slo_misses"] == ["slow"]
