"""PGR, APGR and CPT on hand-made outcome tables; the learned router's cross-fitting."""
import numpy as np
import pytest
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

from testbed.errors import UserError
from testbed.routing import metrics
from testbed.routing.config import CascadeRouter, LearnedRouter
from testbed.routing.features import Features
from testbed.routing.learned import Learned, check_enough
from testbed.routing.outcomes import OutcomeTable
from testbed.routing.routers import Cascade


def table(weak, strong, cost=(1.0, 4.0), conf=None):
    n = len(weak)
    return OutcomeTable([f"i{k}" for k in range(n)], ["c"] * n, ["small", "large"],
                        np.array([weak, strong], bool).T, np.tile(cost, (n, 1)),
                        np.array([conf or [np.nan] * n, [np.nan] * n]).T, np.zeros((n, 2)), np.zeros((n, 2)))


def test_pgr_is_the_share_of_the_gap_recovered():
    assert metrics.pgr(0.6, 0.4, 0.8) == pytest.approx(0.5)
    assert metrics.pgr(0.5, 0.5, 0.5) is None          # no gap: undefined, not 0


def test_perfect_scores_recover_the_gap_with_the_fewest_strong_calls():
    t = table([1, 1, 0, 0, 1, 0, 1, 1], [1, 1, 1, 1, 1, 0, 1, 1])    # strong helps on items 2 and 3 only
    scores = np.array([0, 0, 1, 1, 0, 0, 0, 0], float)
    c = metrics.sweep(t, scores)
    qw, qs = t.quality(0), t.quality(-1)
    assert c["quality"][2] == pytest.approx(qs)          # two strong calls reach the strong tier's quality
    assert c["cost_usd"][2] == pytest.approx(6 * 1 + 2 * 4)
    assert metrics.cpt(c, qw, qs, 0.5) == pytest.approx(1 / 8)
    assert metrics.cpt(c, qw, qs, 0.8) == pytest.approx(2 / 8)
    assert metrics.apgr(c, qw, qs) > 0.85
    inverted = metrics.apgr(metrics.sweep(t, -scores), qw, qs)
    assert inverted < 0.2                                # the worst order recovers the gap last


def test_random_scores_give_apgr_near_one_half_and_a_ci_around_it():
    rng = np.random.default_rng(1)
    weak = rng.random(400) < 0.4
    strong = weak | (rng.random(400) < 0.5)
    t = table(weak, strong)
    scores = rng.random(400)
    a = metrics.apgr(metrics.sweep(t, scores), t.quality(0), t.quality(-1))
    ci = metrics.apgr_ci(t, scores, n_resamples=200)
    assert abs(a - 0.5) < 0.08
    assert ci["ci_low"] < a < ci["ci_high"]


def test_cascade_pays_the_weak_tier_on_every_item():
    t = table([1, 0, 0, 1], [1, 1, 1, 1], conf=[-0.1, -2.0, -1.0, -0.2])
    c = metrics.sweep(t, -t.confidence[:, 0], pays_weak_first=True)
    assert c["cost_usd"][0] == pytest.approx(4 * 1)
    assert c["cost_usd"][2] == pytest.approx(4 * 1 + 2 * 4)
    assert c["quality"][2] == pytest.approx(1.0)        # the two least confident were the two wrong ones


def test_oracle_point_takes_the_cheapest_right_tier():
    t = table([1, 0, 0, 1], [1, 1, 0, 1])
    assert metrics.oracle_point(t) == {"quality": 0.75, "cost_usd": 1 + 4 + 1 + 1}


def _features(n, leak):
    return {f"i{k}": Features(f"i{k}", f"cat{k}" if leak else "c", "What is it?", 100 + k, 50, 2) for k in range(n)}


def test_learned_router_never_scores_an_item_it_was_trained_on():
    # each item has its own category: fitted on all items the model memorises every label,
    # so only out-of-fold scoring keeps the scores near chance
    n = 24
    strong_helps = np.arange(n) % 3 == 0
    t = table(~strong_helps, np.ones(n, bool))
    router = Learned(LearnedRouter(kind="learned", folds=4, c=100.0), _features(n, leak=True), 2)
    router.fit(t)
    in_sample = make_pipeline(DictVectorizer(sparse=False), LogisticRegression(C=100.0, max_iter=1000))
    x = [router.features[i].as_dict() for i in t.item_ids]
    in_sample.fit(x, strong_helps)
    assert roc_auc_score(strong_helps, in_sample.predict_proba(x)[:, 1]) == 1.0
    assert roc_auc_score(strong_helps, router.scores(t)) < 0.75


def test_learned_router_needs_enough_items_of_each_label():
    with pytest.raises(UserError, match="router.folds"):
        check_enough(6, 5, "arms.x.routing")
    t = table([1] * 10 + [0] * 2, [1] * 12)             # two "strong helps" items cannot fill 5 folds
    router = Learned(LearnedRouter(kind="learned", folds=5), _features(12, leak=False), 2)
    with pytest.raises(UserError, match="folds"):
        router.fit(t)


def test_strong_share_sets_the_cut_from_the_scores_alone():
    # learned: 24 items, 25% strong -> the 6 highest cross-fitted scores go strong, whatever their labels
    n = 24
    t = table(np.arange(n) % 3 != 0, np.ones(n, bool))
    router = Learned(LearnedRouter(kind="learned", folds=4, strong_share=0.25), _features(n, leak=False), 2)
    router.fit(t)
    strong = [i for i in t.item_ids if router.first_tier(i) == 1]
    assert len(strong) == 6
    assert min(router.oof[i] for i in strong) == router.threshold >= max(
        router.oof[i] for i in t.item_ids if i not in strong)
    # cascade: half of four items escalate, the two least confident, and the cut sits just above them
    t = table([1, 0, 0, 1], [1, 1, 1, 1], conf=[-0.1, -2.0, -1.0, -0.2])
    cascade = Cascade(CascadeRouter(kind="cascade", strong_share=0.5), {}, 2)
    cascade.fit(t)
    assert [cascade.escalate(0, c) for c in (-0.1, -2.0, -1.0, -0.2)] == [False, True, True, False]
    assert cascade.escalate(0, None) and not cascade.escalate(1, -5.0)


def test_cost_budget_routes_the_most_items_that_fit_and_never_reads_labels():
    # weak costs 1, strong 4 per item; 8 items: strong alone = 32. Learned pays 4 instead of 1 per strong item,
    # so k strong items cost 8 + 3k: a 50% budget (16) fits k = 2, whatever the labels say.
    n, conf = 8, [-0.1, -0.9, -0.2, -0.8, -0.3, -0.7, -0.4, -0.6]
    for labels in (np.zeros(n, bool), np.ones(n, bool)):
        t = table(labels, ~labels)
        learned = Learned(LearnedRouter(kind="learned", cost_budget=0.5), {}, 2)
        assert learned.calibrated_cut(t, np.arange(n, dtype=float)) == 6.0         # items scored 7 and 6 go strong
        # cascade pays the weak tier everywhere: 8 + 4k <= 16 fits k = 2, the two least confident
        cascade = Cascade(CascadeRouter(kind="cascade", cost_budget=0.5), {}, 2)
        cascade.fit(table(labels, ~labels, conf=conf))
        assert [cascade.escalate(0, c) for c in conf] == [c in (-0.9, -0.8) for c in conf]
    # ties go together: with items scored [3, 2, 2, 1] and room for two, only the top one fits
    t = table(np.zeros(4, bool), np.ones(4, bool))
    learned = Learned(LearnedRouter(kind="learned", cost_budget=(4 + 2 * 3) / 16), {}, 2)
    assert learned.calibrated_cut(t, np.array([3.0, 2.0, 2.0, 1.0])) == 3.0
    # a budget the weak tier alone exceeds sends nothing strong
    cascade = Cascade(CascadeRouter(kind="cascade", cost_budget=0.1), {}, 2)
    cascade.fit(table(np.zeros(4, bool), np.ones(4, bool), conf=[-1.0, -2.0, -3.0, -4.0]))
    assert not any(cascade.escalate(0, c) for c in (-1.0, -2.0, -3.0, -4.0, -50.0))


def test_an_answer_that_fails_the_self_check_escalates_first_and_the_budget_counts_it():
    # four items, weak 1 and strong 4 each: the cascade pays 4 + 4k, so a 75% budget (12) fits two escalations.
    # Item 0 is the most confident but broke its format, so it goes first, then the least confident (item 1).
    conf = [-0.1, -2.0, -1.0, -0.2]
    t = table([0, 0, 0, 1], [1, 1, 1, 1], conf=conf)
    t.format_ok[0, 0] = False
    cascade = Cascade(CascadeRouter(kind="cascade", cost_budget=0.75), {}, 2)
    cascade.fit(t)
    assert cascade.scores(t)[0] == np.inf
    assert [cascade.escalate(0, c, ok) for c, ok in zip(conf, t.format_ok[:, 0])] == [True, True, False, False]
    assert not cascade.escalate(1, -0.1, False)                # the top tier has nowhere to go
    unchecked = Cascade(CascadeRouter(kind="cascade", cost_budget=0.75, self_check=False), {}, 2)
    unchecked.fit(t)
    assert [unchecked.escalate(0, c, ok) for c, ok in zip(conf, t.format_ok[:, 0])] == [False, True, True, False]


def test_the_self_check_reads_the_format_the_request_asked_for():
    from testbed.metrics.quality import follows_format
    from testbed.workloads.items import Item
    schema = {"type": "object", "required": ["party"], "properties": {"party": {"type": "string"}}}
    item = Item(id="j", category="json_extraction", question="Who?", answers=['{"party": "Acme"}'], scorer="json",
                schema=schema)
    assert follows_format(item, 'Sure: ```json\n{"party": "Zenith"}\n```')     # the wrong party still fits
    assert follows_format(item, '{"party": 3}') is False                        # the schema rejects it
    assert follows_format(item, '{"party": "Acme"') is False                     # no complete object
    assert follows_format(Item(id="l", category="lookup", question="Who?", answers=["Acme"]), "Acme") is None


@pytest.mark.parametrize("router", [{"kind": "cascade", "strong_share": 0.3, "threshold": -1.0},
                                    {"kind": "cascade", "cost_budget": 0.5, "strong_share": 0.3},
                                    {"kind": "learned", "cost_budget": 0.0},
                                    {"kind": "learned", "cost_budget": 1.5},
                                    {"kind": "learned", "strong_share": 0.3, "threshold": 0.4},
                                    {"kind": "learned", "strong_share": 1.0}])
def test_strong_share_is_checked_like_a_threshold(router):
    from pydantic import TypeAdapter, ValidationError

    from testbed.routing.config import RouterConfig
    with pytest.raises(ValidationError, match="strong_share|cost_budget"):
        TypeAdapter(RouterConfig).validate_python(router)


def test_same_pass_costs_price_each_route_with_the_labelling_seconds():
    from types import SimpleNamespace

    from testbed.routing.summary import same_pass_costs, labelled_cost
    t = table([1, 0, 1], [1, 1, 0], cost=(1.0, 4.0))
    t.cost_usd[2] = [2.0, 6.0]
    t.confidence_cost_usd[:, 0] = 0.5                     # a teacher-forced pass on the weak tier
    routing = SimpleNamespace(table=t, router=SimpleNamespace(needs_confidence=True))
    recs = [{"item_id": "i0", "status": "ok", "route": {"tiers_tried": ["small"]}, "cost_usd": 1.8},
            {"item_id": "i1", "status": "ok", "route": {"tiers_tried": ["small", "large"]}, "cost_usd": 6.0},
            {"item_id": "i2", "status": "ok", "route": {"tiers_tried": ["large"]}, "cost_usd": 6.0},
            {"item_id": "i9", "status": "ok", "route": {"tiers_tried": ["small"]}, "cost_usd": 1.0},   # not labelled
            {"item_id": "i0", "status": "failed", "route": {"tiers_tried": ["small"]}, "cost_usd": 0.1}]
    assert labelled_cost(routing, recs[0]) == pytest.approx(1.5)        # answer + confidence pass
    assert labelled_cost(routing, recs[1]) == pytest.approx(5.5)        # both tiers, the weak one's pass
    assert labelled_cost(routing, recs[2]) == pytest.approx(6.0)        # the top tier pays no confidence pass
    assert labelled_cost(routing, recs[3]) is None
    m = same_pass_costs(routing, recs)
    assert m["cost_vs_labelling"] == pytest.approx((1.8 + 6.0 + 6.0) / (1.5 + 5.5 + 6.0))
    assert m["route_cost_vs_strong"] == pytest.approx((1.5 + 5.5 + 6.0) / (4.0 + 4.0 + 6.0))
    routing.router.needs_confidence = False               # no cascade: nobody pays a confidence pass
    assert labelled_cost(routing, recs[1]) == pytest.approx(5.0)


@pytest.mark.parametrize("warm_every_item", [False, True])
def test_labelling_runs_item_by_item_after_untimed_warm_ups(warm_every_item):
    from types import SimpleNamespace

    from testbed.routing.outcomes import label_tiers
    calls = []

    def run_one(rank, item):
        calls.append((rank, item.id))
        req = SimpleNamespace(num_prompt_tokens=3, num_output_tokens=2, status="finished")
        return req, item.answers[0] if rank else "wrong", 1.0 + rank

    items = [SimpleNamespace(id=f"q{k}", answers=[f"a{k}"], scorer="contains", category="c", schema=None)
             for k in range(3)]
    tiers = [SimpleNamespace(name=n, cost_usd=lambda sec, tokens: sec * 2) for n in ("small", "large")]
    t = label_tiers(tiers, items, run_one, None, progress=False,
                    warm_every_item=warm_every_item)
    timed = [(0, "q0"), (1, "q0"), (0, "q1"), (1, "q1"), (0, "q2"), (1, "q2")]
    assert calls == (timed if warm_every_item else timed[:2]) + timed        # untimed answers first
    assert t.correct.tolist() == [[False, True]] * 3 and t.cost_usd.tolist() == [[2.0, 4.0]] * 3


def test_routed_arms_are_set_against_their_top_tier_run_alone_on_the_same_engine_first():
    from testbed.routing.summary import against_strong_arm
    tiers = [{"name": "small", "model": "m-small"}, {"name": "large", "model": "m-large"}]
    cascade = {"tiers": tiers, "engine": "paged"}
    rules = {"tiers": [{"name": "s", "model": "m-small"}, {"name": "x", "model": "m-xl"}], "engine": "hf"}
    arms = {"large_hf": {"quality_accuracy": 0.8, "cost_per_success_usd": 2.0},
            "large_paged": {"quality_accuracy": 0.8, "cost_per_success_usd": 1.0},
            "small": {"quality_accuracy": 0.5, "cost_per_success_usd": 0.1},
            "cascade": {"quality_accuracy": 0.76, "cost_per_success_usd": 0.55},
            "rules": {"quality_accuracy": 0.7, "cost_per_success_usd": 0.3}}
    plain = {"large_hf": ("m-large", "hf"), "large_paged": ("m-large", "paged"), "small": ("m-small", "hf")}
    against_strong_arm(arms["cascade"], cascade, arms, plain)
    against_strong_arm(arms["rules"], rules, arms, plain)
    assert cascade["strong_arm"]["arm"] == "large_paged"                               # same engine wins
    assert arms["cascade"]["quality_vs_strong_arm"] == pytest.approx(0.95)
    assert arms["cascade"]["cost_per_success_vs_strong_arm"] == pytest.approx(0.55)
    assert "quality_vs_strong_arm" not in arms["rules"] and "strong_arm" not in rules      # no arm runs m-xl alone
