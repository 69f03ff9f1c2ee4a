"""Routed arms end to end on two tiny random tiers, the record contract, and bad input."""
import json

import pytest

from testbed.config import validate
from testbed.errors import UserError
from testbed.runner import Experiment

TIERS = [{"name": "small", "model": {"id": "random:tiny-llama"}, "usd_per_hour": 1.0},
         {"name": "large", "model": {"id": "random:small-llama"}, "usd_per_million_tokens": 5.0}]


def config(arms: dict, limit: int = 6) -> dict:
    return {"name": "routing_test", "model": {"id": "random:tiny-llama"}, "device": "cpu", "threads": 1,
            "workload": {"dataset": "golden", "limit": limit, "max_new_tokens": 4, "warmup": 0},
            "baseline": "plain", "arms": {"plain": {"engine": "hf"}, **arms}, "cost": {"usd_per_hour": 1.0}}


def routed(router: dict, tiers=TIERS) -> dict:
    return {"engine": "hf", "routing": {"tiers": tiers, "router": router, "bootstrap": 100}}


def test_routed_arms_record_their_route_and_cost(tmp_path):
    cfg = validate(config({"cascade": routed({"kind": "cascade", "threshold": -0.5}),
                           "rules": routed({"kind": "rules", "categories": ["lookup"]}),
                           "oracle": routed({"kind": "oracle"}),
                           "random": routed({"kind": "random", "threshold": 0.5})}))
    run_dir = Experiment(cfg, progress=False).run(tmp_path)
    recs = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    for rec in (r for r in recs if r["arm"] != "plain"):
        route = rec["route"]
        assert route["tier"] in ("small", "large") and route["tier_rank"] == ["small", "large"].index(route["tier"])
        assert rec["model"] == route["model"] == ("random:tiny-llama" if route["tier"] == "small" else "random:small-llama")
        assert route["tiers_tried"][-1] == route["tier"] and rec["cost_usd"] > 0
        assert "route" not in rec["stats"]
    cascade = [r for r in recs if r["arm"] == "cascade"]
    assert all(r["route"]["tiers_tried"][0] == "small" for r in cascade)
    assert all(r["route"]["escalated"] == (len(r["route"]["tiers_tried"]) == 2) for r in cascade)
    rules = [r for r in recs if r["arm"] == "rules"]
    assert all((r["route"]["tier"] == "large") == (r["category"] == "lookup") for r in rules)
    for arm in ("cascade", "rules", "oracle", "random"):
        m = summary["arms"][arm]
        assert m["route_share_small"] + m["route_share_large"] == pytest.approx(1.0)
        assert m["cost_usd_total"] == pytest.approx(sum(r["cost_usd"] for r in recs if r["arm"] == arm))
        assert summary["details"][arm]["routing"]["curve"]["share"][-1] == 1.0
    assert "escalation_rate" in summary["arms"]["cascade"]
    assert (run_dir / "plots" / "routing_quality_vs_cost.png").stat().st_size > 0
    assert "routing_quality_vs_cost.png" in (run_dir / "report.md").read_text()


def test_a_tier_that_cannot_load_names_its_field(tmp_path):
    bad = [TIERS[0], {**TIERS[1], "model": {"id": "random:no-such-preset"}}]
    cfg = validate(config({"r": routed({"kind": "cascade"}, bad)}))
    with pytest.raises(UserError, match=r"arms\.r\.routing\.tiers\[1\]\.model\.id"):
        Experiment(cfg, progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("router, field", [({"kind": "cascade", "threshold": 0.5}, "threshold"),
                                           ({"kind": "learned", "threshold": 1.5}, "threshold"),
                                           ({"kind": "random", "threshold": -0.1}, "threshold"),
                                           ({"kind": "learned", "strong_share": 0.0}, "strong_share"),
                                           ({"kind": "cascade", "threshold": -1.0, "strong_share": 0.3},
                                            "threshold or strong_share"),
                                           ({"kind": "nearest"}, "expected tags")])
def test_router_settings_out_of_range_name_the_field(router, field):
    with pytest.raises(UserError, match=rf"arms\.r\.routing\.router.*{field}"):
        validate(config({"r": routed(router)}))


def test_tiers_need_one_price_and_unique_names():
    with pytest.raises(UserError, match="exactly one price"):
        validate(config({"r": routed({"kind": "oracle"}, [TIERS[0], {"name": "large", "model": {"id": "x"}}])}))
    with pytest.raises(UserError, match="unique"):
        validate(config({"r": routed({"kind": "oracle"}, [TIERS[0], TIERS[0]])}))


def test_too_few_items_for_cross_fitting_fails_before_the_run():
    cfg = validate(config({"r": routed({"kind": "learned", "folds": 5})}, limit=6))
    with pytest.raises(UserError, match=r"arms\.r\.routing\.router\.folds"):
        Experiment(cfg, progress=False)
