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
