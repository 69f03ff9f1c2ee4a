"""summary.json of an experiment, from the passes its arms ran: the comparison rows and the sections beside them.

    exp.summary = summarize_run(exp, incomplete=False)     # the runner's _finish, once every pass ran

An arm's row pools every pass it ran (each repeat, rate and probe: tokens over the summed wall time,
peak memory over all of them). Where an arm ran passes the baseline did not (an SLO search probes its
own rates), its ratios come from the passes both ran. Beside the rows: per-category rows, the drift
check, each section's details, the sweep curves, the SLO search's capacity and the report's notes.
"""
from typing import Any

from testbed.capacity import capacity_summary
from testbed.metrics.cpu import cpu_metrics
from testbed.metrics.drift import add_block_ratios
from testbed.metrics.ratio_ci import add_ratio_cis
from testbed.metrics.summary import add_ratios, by_category, ratios_on_shared_passes, summarize_arm
from testbed.workloads.sweep import rate_label, sweep_summary


def pool(runs: list, usd_per_hour: float, slo) -> dict:
    """Pool ArmRuns: tokens over the summed wall time, peak memory over all of them. Takes the cost and SLOs
    alone (report/rebuild.py has no validated config); passes without a CPU time (rebuilt from records) give
    no CPU metrics."""
    records = [r for run in runs for r in run.records]
    memory = {k: max(run.memory.get(k, 0) for run in runs) for k in runs[-1].memory if k != "cpu_s"}
    out = summarize_arm(records, sum(run.wall_s for run in runs), runs[-1].engine_stats, memory, usd_per_hour, slo)
    if any("cpu_s" not in run.memory for run in runs):
        return out
    return {**out, **cpu_metrics(sum(run.memory["cpu_s"] for run in runs), records)}


def arm_row(runs: list, plan, usd_per_hour: float, slo) -> dict:
    """The comparison row: every repeat and every rate of the arm pooled, plus its sections' aggregates."""
    out = pool(runs, usd_per_hour, slo)
    out.update(plan.aggregate([r for run in runs for r in run.records]))
    repeats = sorted({run.repeat for run in runs})
    if len(repeats) > 1:
        out["repeats"] = len(repeats)
        out["output_throughput_per_repeat"] = [pool([run for run in runs if run.repeat == i], usd_per_hour, slo)
                                               ["output_throughput"] for i in repeats]
    return out


def comparison(runs: dict[str, list], plans: dict, base: str, usd_per_hour: float, slo) -> tuple[dict, dict]:
    """Every arm's row with its ratios to the baseline (from the passes both ran), paired block ratios and
    intervals; and the drift check. Shared by the runner and report/rebuild.py, so the two cannot drift apart."""
    arms = {a: arm_row(arm_runs, plans[a], usd_per_hour, slo) for a, arm_runs in runs.items()}
    if base in arms:
        arms = add_ratios(arms, base)
        ratios_on_shared_passes(arms, runs, base, lambda arm_runs: pool(arm_runs, usd_per_hour, slo))
    drift = add_block_ratios(arms, runs, base)
    add_ratio_cis(arms, runs, base, slo)
    return arms, drift


def category_rows(records: list[dict], plan) -> dict:
    """by_category rows plus each strategy's own aggregate (context audits) over that category's records."""
    cats = by_category(records)
    for cat, row in cats.items():
        row.update(plan.aggregate([r for r in records if (r.get("category") or "uncategorised") == cat]))
    return cats


def offered_rates(runs: dict[str, list]) -> list[float]:
    """Every offered rate (or concurrency level) an arm ran at: a sweep's, or those a search probed."""
    return sorted({run.rate for arm_runs in runs.values() for run in arm_runs if run.rate is not None})


def sweep_section(runs: dict[str, list], arm_names: list[str], cfg) -> dict:
    """{axis, rates, curves, best}: per arm and rate, throughput, latency p50/p90 and goodput (repeats pooled)."""
    per_rate: dict[float, dict[str, dict]] = {}
    for rate in offered_rates(runs):
        arms = {a: [run for run in runs.get(a, []) if run.rate == rate] for a in arm_names}
        arms = {a: pool(arm_runs, cfg.cost.usd_per_hour, cfg.slo) for a, arm_runs in arms.items() if arm_runs}
        if arms:
            per_rate[rate] = arms
    return sweep_summary(per_rate, "concurrency" if cfg.workload.arrival.concurrency else "rate")


def trusted_models(cfg, arm_names: list[str]) -> list[str]:
    """Models whose own Python code (trust_remote_code) the run allowed."""
    return sorted({cfg.arm_model(a).id for a in arm_names if cfg.arm_model(a).trust_remote_code})


def notes(cfg, schedule: list, trusted: list[str], order_text: str) -> list[str]:
    """The report's notes: fallback, sweep or SLO search pooling, remote code, the order used."""
    out = ["Fallback applied: no CUDA device, so the config's `fallback:` section was used."] \
        if cfg.fallback_applied else []
    a = cfg.workload.arrival
    if schedule[0][0] is not None:
        rates = ", ".join(rate_label(r) for r, _ in schedule)
        unit, step = ("requests in flight", "levels") if a.concurrency else ("requests/s (inf: all at once)", "rates")
        out.append(f"Sweep at {rates} {unit}: every comparison row pools all {step} "
                   f"(tokens over the summed wall time); the sweep table gives each of them.")
    if a.kind == "slo_search":
        out.append(f"SLO search: per arm, the highest offered rate in [{a.rates[0]}, {a.rates[1]}] req/s at "
                   f"which {a.target:.0%} of requests meet every SLO ({a.steps} bisections, log scale); "
                   "comparison rows pool every probe, their ratios to the baseline only the probes both "
                   "arms ran (same rate and repeat); the capacity section gives each arm's rate.")
    if trusted:
        out.append(f"trust_remote_code: the Python code shipped with {', '.join(trusted)} was run.")
    return out + [order_text]


def summarize_run(exp: Any, incomplete: bool) -> dict:
    """The summary of an Experiment whose passes ran (all, or those before an interrupt); no diagnosis yet."""
    cfg, runs, base = exp.cfg, exp.runs, exp.cfg.baseline
    arms, drift = comparison({a: runs[a] for a in exp.arm_names if a in runs}, exp.plans, base,
                             cfg.cost.usd_per_hour, cfg.slo)
    by_arm = {a: [r for r in exp.records if r["arm"] == a] for a in arms}
    cats = {a: category_rows(by_arm[a], exp.plans[a]) for a in arms}
    details = {a: d for a in arms if (d := exp.plans[a].details(by_arm[a]))}
    for a in arms:
        exp.plans[a].against(arms[a], details.get(a, {}), arms, exp.plans)
    passes = [{"arm": a, "repeat": r.repeat, "rate": None if r.rate is None else rate_label(r.rate),
               "wall_s": r.wall_s, "n": len(r.records)} for a in exp.arm_names for r in runs.get(a, [])]
    summary = {"name": cfg.name, "baseline": base, "incomplete": incomplete, "arms": arms, "by_category": cats,
               "notes": notes(cfg, exp.schedule, trusted_models(cfg, exp.arm_names), exp.order["text"]),
               "runs": passes, "order": exp.order, **({"drift": drift} if drift else {}),
               **({"details": details} if details else {})}
    if offered_rates(runs) and arms:
        summary["sweep"] = sweep_section(runs, exp.arm_names, cfg)
    if exp.capacity:
        summary["capacity"] = capacity_summary(exp.capacity)
    return summary
