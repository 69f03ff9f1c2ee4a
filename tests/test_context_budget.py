"""Budget: a sliding window under a token cap, the edge chunk cut, overflow summarised; gold_only oracle."""
import pytest

from testbed.context.budget import BudgetOptions, BudgetStep, window
from testbed.context.oracle import GoldOnlyStep
from testbed.context.base import StepOptions
from testbed.context.text import count_tokens
from testbed.errors import UserError
from testbed.workloads.items import Chunk, Item

CHUNKS = [Chunk(c, " ".join(f"{c}{i}" for i in range(10))) for c in "abcd"]     # 10 words each


def test_window_head_keeps_best_ranked_and_cuts_the_edge_chunk():
    kept, dropped = window(None, CHUNKS, [10] * 4, 25, "head")
    assert [c.id for c in kept] == ["a", "b", "c"] and kept[2].text == "c0 c1 c2 c3 c4"
    assert [c.id for c in dropped] == ["c", "d"] and dropped[0].text == "c5 c6 c7 c8 c9"


def test_window_tail_keeps_the_last_chunks_in_order():
    kept, dropped = window(None, CHUNKS, [10] * 4, 15, "tail")
    assert [c.id for c in kept] == ["c", "d"] and kept[0].text == "c5 c6 c7 c8 c9"
    assert [c.id for c in dropped] == ["c", "b", "a"]


def test_budget_counts_the_question_and_fits_with_real_tokens(tiny_lm):
    q = "What is c7?"
    step = BudgetStep(BudgetOptions(name="budget", budget_tokens=60), tiny_lm)
    kept, stats = step(q, CHUNKS)
    total = count_tokens(tiny_lm, [q])[0] + sum(count_tokens(tiny_lm, [c.text for c in kept]))
    assert total <= 60 and stats["question_tokens"] == count_tokens(tiny_lm, [q])[0]
    ids = [c.id for c in kept]
    assert ids == list("abcd")[:len(ids)] and stats["dropped"][-1] == "d"      # a head window, in rank order
    assert total >= 60 - count_tokens(tiny_lm, [CHUNKS[0].text])[0]            # filled up to the edge chunk


def test_budget_smaller_than_the_question_names_the_field():
    step = BudgetStep(BudgetOptions(name="budget", budget_tokens=3), None, where="context.steps[1]")
    item = Item("q1", "test", "what is the notice period here?", ["x"])
    with pytest.raises(UserError, match=r"q1: context\.steps\[1\]\.budget_tokens = 3 is smaller than the question"):
        step(item.question, CHUNKS, item=item)


def test_overflow_summary_keeps_source_ids_and_the_budget(tiny_lm):
    step = BudgetStep(BudgetOptions(name="budget", budget_tokens=80, summarize=True, summary_tokens=8), tiny_lm)
    kept, stats = step("What is c7?", CHUNKS)
    assert stats["summarized"] and kept[-1].id.startswith("summary:") and "d" in kept[-1].id.split(":")[1].split("+")
    assert count_tokens(tiny_lm, [kept[-1].text])[0] <= 8 + 2


def test_gold_only_keeps_each_gold_chunk_once():
    item = Item("q", "t", "?", ["x"], chunks=CHUNKS, gold_chunk_ids=["c", "a"])
    kept, stats = GoldOnlyStep(StepOptions(name="gold_only"))("?", CHUNKS + [CHUNKS[0]], item=item)
    assert [c.id for c in kept] == ["a", "c"] and stats["missing_gold"] == []
    with pytest.raises(UserError, match="no gold_chunk_ids"):
        GoldOnlyStep(StepOptions(name="gold_only"))("?", CHUNKS, item=Item("q", "t", "?", ["x"], chunks=CHUNKS))
