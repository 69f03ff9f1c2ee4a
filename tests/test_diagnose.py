"""The failure diagnosis's rules on synthetic records and a fake probe: each cause, its evidence, counts adding up."""
import pytest
from hypothesis import given, settings, strategies as st

from testbed.diagnose.classify import APART, CAUSES, Probe, diagnose, no_probe, reading
from testbed.report.html import diagnosis_html
from testbed.report.markdown import diagnosis_section
from testbed.workloads.items import Chunk, Item

ITEMS = {
    "q1": Item("q1", "lookup", "When?", ["1999"], chunks=[Chunk("g", "In 1999."), Chunk("d", "In 2001.")],
               gold_chunk_ids=["g"]),
    "q2": Item("q2", "lookup", "Who?", ["Ann"], chunks=[Chunk("g", "Ann did.")], gold_chunk_ids=["g"]),
    "q3": Item("q3", "lookup", "Where?", ["Oslo"], chunks=[Chunk("x", "Oslo.")]),          # no gold labels
    "q4": Item("q4", "lookup", "What?", ["tea"], chunks=[Chunk("d", "coffee")], gold_chunk_ids=["g"]),
}


def rec(arm, item, correct=False, model="small", status="ok", stats=None, route=None):
    r = {"arm": arm, "request_id": item, "item_id": item, "category": "lookup", "model": model, "status": status,
         "error": None if status == "ok" else "boom", "correct": correct, "stats": stats or {}}
    if route:
        r["route"] = route
    return r


def audit(*stages, tokens_after=10, tokens_gold=10):
    """ContextPipeline stats: stages are (name, gold_recall, ids)."""
    steps = [{"name": n, "gold_recall": g, "ids": list(ids)} for n, g, ids in stages]
    return {"ContextPipeline": {"gold_recall": steps[-1]["gold_recall"], "tokens_after": tokens_after,
                                "tokens_gold": tokens_gold, "steps": steps}}


class FakeProbe:
    def __init__(self, answers):
        self.answers = answers          # (kind, model) -> True / False / None
        self.calls: list[Probe] = []

    def __call__(self, p: Probe):
        self.calls.append(p)
        return self.answers.get((p.kind, p.model))


def only_row(diag):
    assert len(diag["rows"]) == 1
    return diag["rows"][0]


def test_gold_dropped_by_a_step_is_a_retrieval_error_naming_the_step():
    stats = audit(("retrieved", 1.0, "gd"), ("rerank", 0.0, "d"))
    row = only_row(diagnose([rec("a", "q1", stats=stats)], ITEMS, FakeProbe({})))
    assert row["cause"] == "retrieval" and "rerank" in row["why"]


def test_gold_never_retrieved_is_a_retrieval_error_without_any_probe():
    probe = FakeProbe({("gold_only", "small"): True})
    row = only_row(diagnose([rec("a", "q4")], ITEMS, probe))
    assert row["cause"] == "retrieval" and "retrieved" in row["why"] and not probe.calls


@pytest.mark.parametrize("answer,cause", [(True, "context"), (False, "model"), (None, "needs_probe")])
def test_gold_present_is_decided_by_the_gold_only_probe(answer, cause):
    probe = FakeProbe({("gold_only", "small"): answer})
    row = only_row(diagnose([rec("a", "q1")], ITEMS, probe))
    assert row["cause"] == cause
    assert probe.calls == [Probe("gold_only", "a", "q1", "small", ("g",))]


def test_a_context_that_is_the_gold_chunk_alone_is_its_own_probe():
    probe = FakeProbe({("gold_only", "small"): True})
    row = only_row(diagnose([rec("a", "q2")], ITEMS, probe))
    assert row["cause"] == "model" and row["evidence"] == "own record" and not probe.calls


def test_compressed_gold_text_is_not_the_gold_chunk_alone():
    stats = audit(("retrieved", 1.0, "gd"), ("prune", 1.0, "g"), tokens_after=4, tokens_gold=10)
    probe = FakeProbe({("gold_only", "small"): True})
    row = only_row(diagnose([rec("a", "q1", stats=stats)], ITEMS, probe))
    assert row["cause"] == "context" and len(probe.calls) == 1


def test_another_arms_gold_only_record_stands_in_for_the_probe():
    gold = audit(("retrieved", 1.0, "gd"), ("gold_only", 1.0, "g"))
    records = [rec("a", "q1"), rec("gold", "q1", correct=True, stats=gold)]
    probe = FakeProbe({("gold_only", "small"): False})
    row = only_row(diagnose(records, ITEMS, probe))
    assert row["cause"] == "context" and row["evidence"] == "run:gold" and not probe.calls


def test_evidence_from_an_arm_with_other_sampling_or_model_is_not_used():
    gold = audit(("retrieved", 1.0, "gd"), ("gold_only", 1.0, "g"))
    records = [rec("a", "q1"), rec("hot", "q1", correct=True, stats=gold),
               rec("big", "q1", correct=True, model="large", stats=gold)]
    probe = FakeProbe({("gold_only", "small"): False})
    diag = diagnose(records, ITEMS, probe, settings={"a": 0.0, "hot": 0.7, "big": 0.0})
    assert only_row(diag)["cause"] == "model" and len(probe.calls) == 1


def route(rank, model, tier=None):
    return {"tier": tier or model, "tier_rank": rank, "model": model, "escalated": rank > 0, "confidence": None,
            "tiers_tried": []}


def test_cheap_tier_wrong_where_the_strong_tier_run_is_right_is_a_routing_error():
    records = [rec("r", "q1", route=route(0, "small")), rec("r", "q2", correct=True, model="large",
                                                                  route=route(1, "large")),
               rec("strong", "q1", correct=True, model="large")]
    probe = FakeProbe({})
    row = only_row(diagnose(records, ITEMS, probe))
    assert row["cause"] == "routing" and row["evidence"] == "run:strong" and not probe.calls


@pytest.mark.parametrize("strong,gold,cause", [(True, True, "routing"), (False, True, "context"),
                                               (False, False, "model"), (None, True, "needs_probe")])
def test_without_a_strong_run_the_strongest_tier_is_probed_on_the_same_chunks(strong, gold, cause):
    records = [rec("r", "q1", route=route(0, "small")), rec("r", "q2", correct=True, model="large",
                                                              route=route(1, "large"))]
    probe = FakeProbe({("strongest", "large"): strong, ("gold_only", "small"): gold})
    row = only_row(diagnose(records, ITEMS, probe))
    assert row["cause"] == cause
    assert probe.calls[0] == Probe("strongest", "r", "q1", "large", ("g", "d"))


def test_a_wrong_answer_on_the_strongest_tier_is_never_a_routing_error():
    records = [rec("r", "q1", model="large", route=route(1, "large"))]
    probe = FakeProbe({("strongest", "large"): True, ("gold_only", "large"): False})
    row = only_row(diagnose(records, ITEMS, probe, strongest={"r": (1, "large")}))
    assert row["cause"] == "model" and [p.kind for p in probe.calls] == ["gold_only"]


def test_unlabelled_unknown_and_failed_requests_are_counted_apart():
    records = [rec("a", "q3"), rec("a", "nope"), rec("a", "q1", status="failed"), rec("a", "q2", correct=True)]
    diag = diagnose(records, ITEMS, no_probe)
    a = diag["arms"]["a"]
    assert a["requests"] == 4 and a["failures"] == 3
    assert a["counts"]["unlabelled"] == 2 and a["counts"]["request_error"] == 1
    assert a["model_share_of_classed"] is None and a["reading"] == "no classed failures"


ANSWER = st.sampled_from([True, False, None])
RECORD = st.builds(
    lambda arm, item, correct, status, model, stats, rt: rec(arm, item, correct, model, status, stats, rt),
    st.sampled_from("abc"), st.sampled_from([*ITEMS, "nope"]), st.booleans(), st.sampled_from(["ok", "failed"]),
    st.sampled_from(["small", "large"]),
    st.none() | st.builds(lambda g, ids, tok: audit(("retrieved", 1.0, "gd"), ("rerank", g, ids), tokens_after=tok),
                          st.sampled_from([0.0, 1.0]), st.sampled_from(["g", "d", "gd"]), st.sampled_from([4, 10])),
    st.none() | st.builds(route, st.integers(0, 2), st.sampled_from(["small", "mid", "large"])))


@settings(max_examples=200, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=30),
       st.dictionaries(st.tuples(st.sampled_from(["gold_only", "strongest"]),
                                 st.sampled_from(["small", "mid", "large"])), ANSWER))
def test_counts_add_up_to_the_failures(records, answers):
    diag = diagnose(records, ITEMS, FakeProbe(answers))
    assert sum(a["failures"] for a in diag["arms"].values()) == len(diag["rows"])
    for arm, a in diag["arms"].items():
        wrong = [r for r in records if r["arm"] == arm and not r["correct"]]
        assert a["failures"] == len(wrong) == sum(a["counts"].values())
        assert set(a["counts"]) == set(CAUSES) | set(APART)
        if wrong:
            assert sum(a["shares"].values()) == pytest.approx(1.0)


def test_reading_applies_the_twenty_and_fifty_percent_rule():
    assert reading(0.19) == "19% model errors: a systems problem, not a model problem"
    assert reading(0.51) == "51% model errors: the model limits quality"
    issue = {"retrieval": 21, "context": 15, "routing": 0, "model": 18}      # extractive in issue 17: 33% model
    assert reading(18 / 54, issue) == ("33% model errors: mixed, the system and the model both limit quality; "
                                       "the largest system cause is retrieval (21 failures)")
    assert "largest system cause is context (3" in reading(0.5, {"retrieval": 1, "context": 3, "model": 4})
    records = [rec("a", "q4"), rec("a", "q4"), rec("a", "q4"), rec("a", "q4"), rec("a", "q2")]
    a = diagnose(records, ITEMS, no_probe)["arms"]["a"]
    assert a["counts"]["retrieval"] == 4 and a["counts"]["model"] == 1
    assert a["model_share_of_classed"] == pytest.approx(0.2) and "mixed" in a["reading"]
    assert "largest system cause is retrieval (4 failures)" in a["reading"]


def test_report_section_shows_each_arms_shares_and_the_rule():
    records = [rec("a", "q4"), rec("a", "q1"), rec("b", "q2", correct=True), rec("b", "q3")]
    diag = diagnose(records, ITEMS, FakeProbe({("gold_only", "small"): None}))
    diag.update(probes={"run": 0, "cached": 0, "not_run": 1}, file="diagnosis.json")
    text = "\n".join(diagnosis_section(diag))
    assert "## Failure diagnosis" in text and "Rule of thumb" in text
    assert "| a     | 2/2     | 1 (50%)" in text and "needs probe" in text and "q1" in text
    page = "\n".join(diagnosis_html(diag))
    assert "<h2>Failure diagnosis</h2>" in page and "50%" in page
    assert diagnosis_section(None) == [] and diagnosis_html(None) == []
