"""A routed arm's summary: route shares, measured cost, PGR at the operating point, APGR/CPT from the sweep.

    arm_metrics(routing, records)  -> flat keys: route_share_<tier>, router_threshold, cost_usd_total, cost_per_success_usd,
                                      quality_weak, quality_strong, quality_vs_strong, cost_vs_strong,
                                      pgr, apgr, apgr_ci_low, apgr_ci_high, cpt_50, cpt_80, escalation_rate,
                                      self_check_failed_rate (a cascade's answers that broke their asked format),
                                      cost_vs_labelling, route_cost_vs_strong
    arm_details(routing, records)  -> curves and points for the quality-vs-cost plot (summary["details"])
    against_strong_arm(row, routing, arms, plain) -> quality_vs_strong_arm, cost_per_success_vs_strong_arm

The weak and strong figures come from the labelling pass on the same items (each tier alone);
the router's own quality and cost are those measured in the arm's run. Two checks of the cost
comparison: `cost_vs_labelling` is the arm's measured cost over what the same routes (every tier
a request tried, and its confidence pass where one runs) cost on the labelling pass, so > 1 means
the arm ran slower than the pass it is compared with (the machine drifted, or contention) and < 1
that batching paid off; `route_cost_vs_strong` prices the arm's routes with the labelling pass's
seconds alone, both sides timed in the same interleaved pass.
"""
from collections import Counter
from functools import partial

import numpy as np

from testbed.metrics.latency import is_ok
from testbed.metrics.summary import is_correct, put_metric
from testbed.routing import metrics

_put = partial(put_metric, finite=True)     # a router's cut can be +inf (nothing fits the budget): left out


def route_shares(routing, records: list[dict]) -> dict[str, float]:
    tiers = Counter((r.get("route") or {}).get("tier") for r in records)
    return {f"route_share_{t.name}": tiers.get(t.name, 0) / max(1, len(records)) for t in routing.tiers}


def _sweep(routing) -> dict:
    return metrics.sweep(routing.table, routing.scores(), routing.router.pays_weak_first)


def labelled_cost(routing, rec: dict) -> float | None:
    """What a record's route cost on the labelling pass (None: the item was not labelled or nothing ran)."""
    table, route = routing.table, rec.get("route") or {}
    i, tried = table.index.get(rec["item_id"]), route.get("tiers_tried") or []
    if i is None or not tried:
        return None
    ranks = [table.tier_names.index(name) for name in tried]
    paid_conf = [r for r in ranks if routing.router.needs_confidence and r < table.cost_usd.shape[1] - 1]
    return float(table.cost_usd[i, ranks].sum() + table.confidence_cost_usd[i, paid_conf].sum())


def same_pass_costs(routing, records: list[dict]) -> dict:
    """cost_vs_labelling and route_cost_vs_strong over the ok records of labelled items."""
    pairs = [(r.get("cost_usd") or 0.0, labelled, routing.table.index[r["item_id"]])
             for r in records if is_ok(r) and (labelled := labelled_cost(routing, r)) is not None]
    if not pairs:
        return {}
    arm, labelled, ids = (np.array(x, dtype=float) for x in zip(*pairs))
    strong = routing.table.cost_usd[ids.astype(int), -1].sum()
    out: dict = {}
    _put(out, "cost_vs_labelling", arm.sum() / labelled.sum() if labelled.sum() else None)
    _put(out, "route_cost_vs_strong", labelled.sum() / strong if strong else None)
    return out


def arm_metrics(routing, records: list[dict]) -> dict:
    table, router = routing.table, routing.router
    out = route_shares(routing, records)
    _put(out, "router_threshold", getattr(router, "threshold", None))   # the cut in force (set or calibrated)
    cost = float(sum(r.get("cost_usd") or 0.0 for r in records))
    n_ok = sum(map(is_correct, records))
    q = n_ok / len(records) if records else 0.0
    ids = [table.index[r["item_id"]] for r in records if r["item_id"] in table.index]
    qw, qs = float(table.correct[ids, 0].mean()), float(table.correct[ids, -1].mean())
    strong_cost = float(table.cost_usd[ids, -1].sum())
    out.update(cost_usd_total=cost, quality_weak=qw, quality_strong=qs)
    _put(out, "cost_per_success_usd", cost / n_ok if n_ok else None)
    _put(out, "quality_vs_strong", q / qs if qs else None)
    _put(out, "cost_vs_strong", cost / strong_cost if strong_cost else None)
    out.update(same_pass_costs(routing, records))
    _put(out, "pgr", metrics.pgr(q, qw, qs))
    if router.needs_confidence:
        routes = [r.get("route") or {} for r in records]
        out["escalation_rate"] = sum(bool(rt.get("escalated")) for rt in routes) / max(1, len(records))
        out["self_check_failed_rate"] = sum(rt.get("format_ok") is False for rt in routes) / max(1, len(records))
    curve = _sweep(routing)
    qw_all, qs_all = table.quality(0), table.quality(-1)
    _put(out, "apgr", metrics.apgr(curve, qw_all, qs_all))
    if "apgr" in out:
        ci = metrics.apgr_ci(table, routing.scores(), router.pays_weak_first, routing.section.bootstrap)
        _put(out, "apgr_ci_low", ci["ci_low"])
        _put(out, "apgr_ci_high", ci["ci_high"])
    _put(out, "cpt_50", metrics.cpt(curve, qw_all, qs_all, 0.5))
    _put(out, "cpt_80", metrics.cpt(curve, qw_all, qs_all, 0.8))
    return out


def arm_details(routing, records: list[dict]) -> dict:
    """What the plot and diagnosis read: tiers, the sweep curve, the operating point, oracle and labels."""
    table = routing.table
    curve = _sweep(routing)
    n_ok = sum(map(is_correct, records))
    return {"router": routing.section.router.kind, "engine": routing.plan.arm.engine,
            "tiers": [{"name": t.name, "rank": t.rank, "model": t.lm.spec_id} for t in routing.tiers],
            "tier_points": metrics.tier_points(table),
            "oracle": metrics.oracle_point(table),
            "curve": {k: v.tolist() for k, v in curve.items()},
            "operating_point": {"quality": n_ok / max(1, len(records)),
                                "cost_usd": float(sum(r.get("cost_usd") or 0.0 for r in records)), "n": len(records)},
            "outcomes": table.as_json()}


def against_strong_arm(row: dict, routing: dict, arms: dict, plain: dict[str, tuple[str, str]]) -> None:
    """Set a routed arm (its summary `row` and details `routing`) against the run's arm that runs its strongest
    tier's model alone (the same engine preferred, then the first such arm): quality_vs_strong_arm and
    cost_per_success_vs_strong_arm in `row`, that arm's name and figures under routing["strong_arm"]. The
    strong arm's cost is its wall time at the run's price, a routed arm's the seconds of its tier steps at
    each tier's price; on a batch-of-one engine the two differ by the harness's time between requests
    (milliseconds per request).

    arms: every arm's summary row; plain: {arm: (model id, engine)} for the arms with no strategy section.
    """
    top = routing["tiers"][-1]["model"]
    same = sorted((a for a, (model, _) in plain.items() if model == top and a in arms),
                  key=lambda a: plain[a][1] != routing.get("engine"))
    if not same:
        return
    ref = arms[same[0]]
    q, q_ref = row.get("quality_accuracy"), ref.get("quality_accuracy")
    c, c_ref = row.get("cost_per_success_usd"), ref.get("cost_per_success_usd")
    _put(row, "quality_vs_strong_arm", q / q_ref if q is not None and q_ref else None)
    _put(row, "cost_per_success_vs_strong_arm", c / c_ref if c is not None and c_ref else None)
    routing["strong_arm"] = {"arm": same[0], "engine": plain[same[0]][1], "quality": q_ref,
                             "cost_per_success_usd": c_ref}
