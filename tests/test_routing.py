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
    report = (run_dir / "report.md").read_text()
    assert "routing_quality_vs_cost.png" in report
    routing = report.split("## Routing")[1].split("\n## ")[0]          # one row per routed arm, none for plain
    assert [line.split("|")[1].strip() for line in routing.splitlines() if line.startswith("| ")][1:] == [
        "cascade", "rules", "oracle", "random"]
    assert "Each tier alone (labelling pass, 6 items)" in routing
    page = (run_dir / "report.html").read_text()          # the HTML report has the same section
    routing_html = page.split("<h2>Routing</h2>")[1].split("<h2>")[0]
    assert "Each tier alone (labelling pass, 6 items)" in routing_html
    assert all(f"<th>{arm}</th>" in routing_html for arm in ("cascade", "rules", "oracle", "random"))


def test_the_cascade_escalates_answers_that_break_their_json_schema_however_confident(tmp_path):
    # random weights never write JSON; at the lowest threshold allowed no confidence is low enough to escalate
    arms = {"checked": routed({"kind": "cascade", "threshold": -20.0}),
            "unchecked": routed({"kind": "cascade", "threshold": -20.0, "self_check": False})}
    cfg = config(arms, limit=3)
    cfg["workload"]["categories"] = ["json_extraction"]
    run_dir = Experiment(validate(cfg), progress=False).run(tmp_path)
    recs = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    for arm, escalated in (("checked", True), ("unchecked", False)):
        routes = [r["route"] for r in recs if r["arm"] == arm]
        assert len(routes) == 3 and all(rt["confidence"] > -20.0 and rt["format_ok"] is False for rt in routes)
        assert all(rt["escalated"] is escalated for rt in routes)
        assert summary["arms"][arm]["self_check_failed_rate"] == 1.0
        assert summary["arms"][arm]["escalation_rate"] == float(escalated)
    outcomes = summary["details"]["checked"]["routing"]["outcomes"]
    assert [row[0] for row in outcomes["format_ok"]] == [False] * 3


def test_a_routed_arm_is_set_against_its_top_tier_run_alone(tmp_path):
    cfg = config({"cascade": routed({"kind": "cascade", "cost_budget": 0.6})}, limit=4)
    cfg["model"]["id"] = "random:small-llama"            # the plain arm runs the top tier's model alone
    run_dir = Experiment(validate(cfg), progress=False).run(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["details"]["cascade"]["routing"]["strong_arm"] == {
        "arm": "plain", "engine": "hf", "quality": summary["arms"]["plain"]["quality_accuracy"],
        "cost_per_success_usd": summary["arms"]["plain"].get("cost_per_success_usd")}
    # random weights answer nothing right: no ratio to a quality of 0, and no sentence in the report
    assert "quality_vs_strong_arm" not in summary["arms"]["cascade"]
    assert "the strongest tier run alone" not in (run_dir / "report.md").read_text()


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
                                            "threshold and strong_share"),
                                           ({"kind": "learned", "cost_budget": 2.0}, "cost_budget"),
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


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class _Batching:
    """A continuous-batching stand-in: each step costs 1 s on the clock; a request's first step is a
    prefill that emits nothing, then one token per step until max_new_tokens."""

    def __init__(self, clock):
        self.clock, self.running = clock, []

    def add_request(self, req):
        req.stats["prefilled"] = False
        self.running.append(req)

    def has_unfinished(self):
        return bool(self.running)

    def step(self):
        self.clock.now += 1.0
        done = []
        for req in self.running:
            if not req.stats["prefilled"]:
                req.stats["prefilled"] = True
            elif req.append_tokens([7], self.clock.now):
                done.append(req)
        self.running = [r for r in self.running if r not in done]
        return done


def test_batched_tier_steps_are_paid_in_full_by_the_requests_they_served(monkeypatch):
    # three requests on one tier: a joins at t=0 (2 tokens), b and c after a's prefill (1 token each).
    # Steps: 1 prefill a (nobody served: carried on) | 2 a tok, prefill b c -> a pays 2 | 3 a tok (done), b c tok
    # (done) -> 1/3 each. Totals: a 2 1/3, b 1/3, c 1/3 = the 3 seconds the tier ran.
    from types import SimpleNamespace

    from testbed.routing import engine as routed
    from testbed.request import Request

    clock = _Clock()
    monkeypatch.setattr(routed.time, "perf_counter", clock)
    price = SimpleNamespace(cost_usd=lambda seconds, tokens: seconds)        # 1 USD per second
    lm = SimpleNamespace(eos_token_ids=())
    routing = SimpleNamespace(plan=SimpleNamespace(lm=lm, arm=SimpleNamespace(options=None)),
                              router=SimpleNamespace(first_tier=lambda item: 0, needs_confidence=False,
                                                     escalate=lambda rank, conf, format_ok: False),
                              tiers=[SimpleNamespace(name="t", lm=SimpleNamespace(spec_id="m", eos_token_ids=()),
                                                     cfg=price)],
                              render=lambda rank, req: ("p", [1, 2]), max_new_tokens=lambda rank, req: req.max_new_tokens)
    engine = routed.RoutedEngine(routing, [_Batching(clock)])
    a, b, c = (Request(id=k, prompt_ids=[1], max_new_tokens=n) for k, n in (("a", 2), ("b", 1), ("c", 1)))
    engine.add_request(a)
    assert engine.step() == []
    engine.add_request(b)
    engine.add_request(c)
    finished = []
    while engine.has_unfinished():
        finished += engine.step()
    cost = {r.id: r.stats["cost_usd"] for r in finished}
    assert cost == pytest.approx({"a": 2 + 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert sum(cost.values()) == pytest.approx(clock.now)


def test_confidence_is_the_mean_log_prob_of_the_emitted_tokens():
    import torch

    from testbed.config import ModelSpec
    from testbed.models import load_model
    from testbed.routing.confidence import mean_logprob

    lm = load_model(ModelSpec(id="random:tiny-llama"), "cpu")
    prompt, output = [5, 17, 42, 9, 3], [11, 7, 29]
    with torch.inference_mode():       # reference: every position's logits, the ones predicting the output
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([prompt + output])).logits[0].float(), -1)
    expected = sum(float(logp[len(prompt) - 1 + k, tok]) for k, tok in enumerate(output)) / len(output)
    assert mean_logprob(lm, prompt, output) == pytest.approx(expected, abs=1e-5)
    assert mean_logprob(lm, prompt, []) is None


def test_cascade_confidence_comes_with_the_tokens_on_hf_and_from_a_pass_elsewhere(tmp_path, monkeypatch):
    from testbed.routing import runtime
    passes = []
    real = runtime.mean_logprob
    monkeypatch.setattr(runtime, "mean_logprob", lambda *a: passes.append(1) or real(*a))
    arms = {"hf_cascade": routed({"kind": "cascade", "threshold": -0.5}),
            "paged_cascade": {**routed({"kind": "cascade", "threshold": -0.5}), "engine": "paged"}}
    # a rules arm first: the labelling pass it starts is the one the cascade reads (confidences included)
    cfg = validate(config({"rules": routed({"kind": "rules", "categories": ["lookup"]}),
                           "hf_cascade": arms["hf_cascade"]}, limit=4))
    run_dir = Experiment(cfg, progress=False).run(tmp_path / "hf")
    recs = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert all(r["route"]["confidence"] is not None for r in recs if r["arm"] == "hf_cascade")
    assert passes == []                                  # labelling and arm: no teacher-forced pass on hf
    outcomes = json.loads((run_dir / "summary.json").read_text())["details"]["hf_cascade"]["routing"]["outcomes"]
    assert all(row[0] is not None for row in outcomes["confidence"])
    assert all(row == [0.0, 0.0] for row in outcomes["confidence_cost_usd"])
    cfg = validate(config({"paged_cascade": arms["paged_cascade"]}, limit=4))
    Experiment(cfg, progress=False).run(tmp_path / "paged")
    assert len(passes) >= 4                              # the paged engine keeps no log-probs: one pass per answer
