"""Audits on hand-made chunk lists with known answers: duplicate rates, gold recall and position, tokens."""
import pytest

from testbed.context import audit
from testbed.workloads.items import Chunk, Item

GOLD = Chunk("g", "Marlowe Coffee operates 212 stores in Portland.")
COPY = Chunk("g2", "Marlowe Coffee operates 212 stores in Portland.")          # exact copy of the gold chunk
NEAR = Chunk("n", "Marlowe Coffee runs 212 stores in Portland.")               # reworded copy, same facts
DIST = Chunk("d", "Saltbridge Media operates 240 stores in Portland.")          # confusable distractor
OTHER = Chunk("o", "The kettle holds 1.7 litres and boils in three minutes.")
ITEM = Item("i1", "long_noisy", "How many stores does Marlowe Coffee operate?", ["212"],
            chunks=[DIST, COPY, OTHER, GOLD, NEAR], gold_chunk_ids=["g"],
            meta={"duplicate_of": {"g2": "g"}, "near_duplicate_of": {"n": "g"}})


def test_duplicate_count_counts_exact_and_near_copies_of_earlier_chunks():
    assert audit.duplicate_count(ITEM.chunks, threshold=0.6, shingle=1) == 2      # GOLD (repeats g2) and NEAR
    assert audit.duplicate_count([DIST, GOLD, OTHER], threshold=0.6, shingle=1) == 0


def test_gold_recall_credits_labelled_copies_and_position_finds_first_carrier():
    assert audit.gold_recall([DIST, OTHER], ITEM) == 0.0
    assert audit.gold_recall([DIST, COPY], ITEM) == 1.0
    assert audit.gold_position([DIST, OTHER, NEAR, GOLD], ITEM) == 2
    assert audit.gold_position([DIST], ITEM) is None
    assert audit.gold_recall([GOLD], Item("x", "c", "?", ["a"])) is None


def test_injected_pairs_count_only_while_both_sides_are_present():
    assert audit.injected_count(ITEM.chunks, ITEM) == 2
    assert audit.injected_count([COPY, NEAR, OTHER], ITEM) == 0       # the original went: the pairs are resolved
    assert audit.injected_count([GOLD], Item("x", "c", "?", ["a"])) is None


def test_answer_present_matches_whole_normalised_words():
    assert audit.answer_present([DIST, GOLD], ITEM) is True
    assert audit.answer_present([DIST], ITEM) is False                # "240" does not contain "212"
    assert audit.answer_present([Chunk("x", "2120 stores")], ITEM) is False


def request(after: list[Chunk]) -> dict:
    stages = [audit.stage("retrieved", ITEM.chunks, ITEM, None), audit.stage("dedup", after, ITEM, None, 0.01)]
    return audit.request_audit(ITEM, ITEM.chunks, after, stages, None, threshold=0.6, shingle=1)


def test_request_audit_and_aggregate_known_values():
    a = request([DIST, COPY, OTHER])        # tokens are words here: 7 + 7 + 11 = 25 of 25 + 7 + 7 = 39
    assert (a["tokens_before"], a["tokens_after"], a["tokens_gold"]) == (39, 25, 7)
    assert (a["duplicates_before"], a["duplicates_after"]) == (2, 0)
    assert (a["injected_before"], a["injected_after"]) == (2, 0)
    assert a["gold_recall"] == 1.0 and a["gold_position"] == 1 and a["relevance"] == pytest.approx(1 / 3)
    b = request([DIST, OTHER])
    flat = audit.aggregate([a, b], seconds=[0.5, 0.25])
    assert flat["duplicate_rate_before"] == pytest.approx(4 / 10)
    assert flat["duplicate_rate_after"] == 0.0
    assert flat["injected_duplicates_removed_pct"] == 100.0
    assert flat["context_tokens_saved_pct"] == pytest.approx(100 * (1 - (25 + 18) / 78), abs=1e-4)
    assert flat["context_tokens_mean"] == 21.5 and flat["context_tokens_vs_min"] == pytest.approx(43 / 14)
    assert flat["gold_recall"] == 0.5 and flat["gold_recall_before"] == 1.0
    assert flat["gold_recall_step1_dedup"] == 0.5
    assert flat["gold_position_mean"] == 1.0           # the request that lost gold has no position
    assert flat["context_seconds_mean"] == 0.375
    assert "answer_in_context_rate" in flat and flat["answer_in_context_rate"] == 0.5


def test_aggregate_of_nothing_is_empty_and_absent_metrics_stay_absent():
    assert audit.aggregate([]) == {}
    item = Item("x", "c", "?", [], chunks=[OTHER])
    st = [audit.stage("retrieved", [OTHER], item, None)]
    flat = audit.aggregate([audit.request_audit(item, [OTHER], [OTHER], st, None)])
    assert "gold_recall" not in flat and "injected_duplicates_removed_pct" not in flat
    assert flat["context_tokens_saved_pct"] == 0.0


@pytest.mark.parametrize("rate,level", [(None, None), (0.05, None), (0.10, None), (0.15, "warning"), (0.25, "cause")])
def test_duplicate_warning_levels(rate, level):
    msg = audit.duplicate_warning(rate)
    assert (msg is None) == (level is None)
    if level == "cause":
        assert "almost certainly" in msg
    elif level == "warning":
        assert "warning sign" in msg


def _summary(before_after: dict[str, tuple[float, float]]) -> dict:
    arms = {a: {"duplicate_rate_before": b, "duplicate_rate_after": f, "gold_recall_before": 1.0, "gold_recall": 1.0,
                "gold_recall_step1_dedup": 1.0, "context_tokens_mean": 40.0, "quality_accuracy": 0.5}
            for a, (b, f) in before_after.items()}
    return {"name": "t", "baseline": "raw", "arms": arms,
            "by_category": {a: {"long_noisy": {"n": 2, **m}} for a, m in arms.items()}}


def test_report_section_warns_per_category_and_keeps_audits_out_of_the_generic_table(tmp_path):
    from testbed.report.context_audit import audit_frames, audit_warnings, recall_path
    from testbed.report.html import render_html
    from testbed.report.markdown import render_markdown
    s = _summary({"raw": (0.25, 0.25), "fixed": (0.25, 0.0), "half": (0.25, 0.15)})
    warns = audit_warnings(s)
    assert warns[0].startswith("context as retrieved, long_noisy: duplicate rate 0.25 > 0.2")
    assert sum("as retrieved" in w for w in warns) == 1            # the same retrieved context is reported once
    assert any(w.startswith("arm half, long_noisy") and "> 0.1: a warning sign" in w for w in warns)
    assert not any("arm fixed" in w for w in warns)
    assert recall_path(s["arms"]["fixed"]) == "retrieved 1.00 → dedup 1.00"
    assert list(audit_frames(s)["category"].index) == [("raw", "long_noisy"), ("fixed", "long_noisy"),
                                                       ("half", "long_noisy")]
    md = render_markdown(s, [], tmp_path)
    generic = md.split("## By category")[1].split("## Context audit")[0]
    assert "duplicate_rate_after" not in generic and "quality_accuracy" in generic
    assert "- **Warning**: arm raw, long_noisy, what reached the model: duplicate rate 0.25" in md
    assert '<p class="warn">Warning: context as retrieved' in render_html(s, [])


def test_report_has_no_context_section_without_context_arms(tmp_path):
    from testbed.report.markdown import render_markdown
    s = {"name": "t", "baseline": "a", "arms": {"a": {"quality_accuracy": 1.0}}, "by_category": {}}
    assert "Context audit" not in render_markdown(s, [], tmp_path)


def _two_steps(first: list[Chunk], second: list[Chunk]) -> dict:
    stages = [audit.stage("retrieved", ITEM.chunks, ITEM, None), audit.stage("dedup", first, ITEM, None),
              audit.stage("extract", second, ITEM, None)]
    return audit.request_audit(ITEM, ITEM.chunks, second, stages, None)


def test_loss_warnings_name_the_step_that_lowered_recall_and_answer_in_context():
    keep = _two_steps([DIST, GOLD], [DIST, GOLD])
    cut = _two_steps([DIST, GOLD], [DIST, Chunk("g", "Marlowe Coffee operates stores.")])   # gold id, answer gone
    drop = _two_steps([DIST, GOLD], [DIST])
    flat = audit.aggregate([keep, cut, drop])
    assert flat["gold_dropped_items"] == 1 and flat["answer_lost_items"] == 2
    assert flat["answer_in_context_rate_before"] == 1.0 and flat["answer_in_context_step2_extract"] == pytest.approx(1 / 3)
    warns = audit.loss_warnings(flat)
    assert warns == ["gold recall fell from 1.00 as retrieved to 0.67 on 1 request(s); lowered by step "
                     "extract (1.00 → 0.67)",
                     "answer in context fell from 1.00 as retrieved to 0.33 on 2 request(s); lowered by step "
                     "extract (1.00 → 0.33)"]
    assert audit.loss_warnings(audit.aggregate([keep, keep])) == []


def test_a_single_request_losing_gold_is_flagged_in_report_and_summary_details():
    from testbed.context.pipeline import ContextSection
    from testbed.report.context_audit import audit_warnings
    rec = lambda a, cat: {"category": cat, "stats": {"ContextPipeline": a}}   # noqa: E731
    keep, drop = _two_steps([GOLD], [GOLD]), _two_steps([GOLD], [DIST])
    records = [rec(keep, "lookup")] * 9 + [rec(drop, "lookup"), rec(keep, "long_noisy")]
    details = ContextSection().details(records)
    assert len(details["context_warnings"]) == 2 and all(w.startswith("lookup: ") for w in details["context_warnings"])
    assert "on 1 request(s); lowered by step extract (1.00 → 0.90)" in details["context_warnings"][0]
    summary = {"arms": {"x": {"duplicate_rate_before": 0.0}},
               "by_category": {"x": {"lookup": {"duplicate_rate_before": 0.0, **audit.aggregate([keep] * 9 + [drop])}}}}
    assert any(w.startswith("arm x, lookup: gold recall fell") for w in audit_warnings(summary))


def test_items_without_chunks_pass_every_step_and_are_counted():
    from testbed.context.pipeline import ContextPipeline, ContextSection
    from testbed.plugins import load_plugins
    load_plugins()
    empty = Item("e", "lookup", "What is the notice period?", ["90 days"])
    steps = [{"name": n} for n in ("dedup", "gold_only")] + [{"name": "rerank", "top_n": 1},
                                                              {"name": "extract", "ratio": 0.5}]
    pipe = ContextPipeline(ContextSection.model_validate({"steps": steps}), None)
    chunks, a = pipe.prepare(empty, [])
    assert chunks == [] and a["no_chunks"] and audit.aggregate([a])["items_without_chunks"] == 1
