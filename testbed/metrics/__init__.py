"""Metrics: latency (vLLM definitions), memory tracking, quality scorers, cost, bootstrap statistics,
and the per-arm summary that turns request records into the flat keys of DESIGN §3.

    from testbed.metrics.summary import summarize_arm, add_ratios, by_category
    from testbed.metrics.quality import SCORERS, score_output
"""
