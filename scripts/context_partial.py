"""A summary rebuilt from requests.jsonl, for a run stopped before it wrote summary.json.

    summary = summary_from_records(records, config)    # {"name", "baseline", "incomplete": True, "arms", "by_category"}

bench_context.py uses it when the run directory has no summary.json (a run killed by SIGTERM, or a
background run that ignores Ctrl-C). Wall-time figures (throughput, cost) need the arm's wall time,
which only the runner knows, so they are absent; per-request figures (latency percentiles, quality,
the context audit) are the same as the runner's.
"""
from testbed.context.pipeline import ContextPipeline
from testbed.metrics.summary import by_category, summarize_arm


def summary_from_records(records: list[dict], config: dict) -> dict:
    arms, cats = {}, {}
    for arm in dict.fromkeys(r["arm"] for r in records):
        recs = [r for r in records if r["arm"] == arm]
        row = summarize_arm(recs, wall_s=0.0)
        arms[arm] = {k: v for k, v in row.items() if "throughput" not in k} | ContextPipeline.aggregate(recs)
        cats[arm] = {c: m | ContextPipeline.aggregate([r for r in recs if (r.get("category") or "uncategorised") == c])
                     for c, m in by_category(recs).items()}
    return {"name": config.get("name"), "baseline": config["baseline"], "incomplete": True, "arms": arms,
            "by_category": cats}
