"""Properties of the compression steps, for any context: non-empty in gives non-empty out, and the
top-scored sentence always survives, whatever the budget or ratio (hypothesis draws the contexts)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.context.compress import (ExtractOptions, ExtractStep, PruneOptions, PruneStep, best_row,
                                      sentence_table)
from testbed.context.text import sentences
from testbed.workloads.items import Chunk

VOCAB = ["notice", "period", "days", "lease", "tenant", "rent", "Halvard", "clause", "fees", "ninety",
         "insurer", "policy", "deductible", "loan", "rate", "2021", "45", "the", "is", "of"]
word = st.sampled_from(VOCAB)
sentence = st.lists(word, min_size=1, max_size=14).map(lambda ws: " ".join(ws).capitalize() + ".")
chunk_text = st.lists(sentence, min_size=1, max_size=5).map(" ".join)
contexts = st.lists(chunk_text, min_size=1, max_size=6).map(
    lambda ts: [Chunk(f"c{i}", t) for i, t in enumerate(ts)])
questions = st.lists(word, min_size=1, max_size=8).map(lambda ws: " ".join(ws) + "?")
budgets = st.one_of(st.builds(dict, budget_tokens=st.integers(1, 60)),
                    st.builds(dict, ratio=st.floats(0.01, 1.0), min_context_tokens=st.integers(0, 80)))
knobs = st.fixed_dictionaries({}, optional={"top_n": st.integers(1, 3), "min_relative": st.floats(0, 1),
                                            "keep_lead": st.booleans(), "drop_unmatched": st.booleans(),
                                            "coverage": st.sampled_from([0.0, 2.0]),
                                            "order": st.sampled_from(["best_first", "best_last", "retrieved"])})


def _kept_sentences(chunks: list[Chunk]) -> set[tuple[str, str]]:
    return {(c.id, s) for c in chunks for s in sentences(c.text)}


@settings(max_examples=150, deadline=None)
@given(contexts, questions, budgets, knobs)
def test_extract_never_empties_the_context_and_keeps_the_top_sentence(chunks, query, budget, kw):
    opts = ExtractOptions(name="extract", **budget, **kw)
    kept, stats = ExtractStep(opts)(query, chunks)
    assert kept and any(c.text.strip() for c in kept)
    if "passed_whole" in stats:                  # a ratio on a small context: nothing may go
        assert kept == chunks
        return
    rows = sentence_table(opts, query, chunks)
    top = rows[best_row(np.array([r[3] for r in rows]))]
    assert (chunks[top[0]].id, top[2]) in _kept_sentences(kept)


@settings(max_examples=25, deadline=None)
@given(contexts, st.floats(0.01, 1.0), st.integers(0, 40))
def test_prune_never_empties_a_chunk(tiny_lm, chunks, ratio, min_tokens):
    kept, _ = PruneStep(PruneOptions(name="prune", keep_ratio=ratio, min_context_tokens=min_tokens), tiny_lm)("q?", chunks)
    assert [c.id for c in kept] == [c.id for c in chunks]
    assert all(c.text.strip() for c in kept)


def test_a_ratio_passes_a_context_below_the_minimum_whole_and_compresses_above_it():
    chunks = [Chunk("a", "The lease runs for five years. Rent is due monthly. The tenant pays utilities.")]
    q = "When is rent due?"
    small, stats = ExtractStep(ExtractOptions(name="extract", ratio=0.15, min_context_tokens=300))(q, chunks)
    assert small == chunks and stats == {"passed_whole": 14}
    cut, stats = ExtractStep(ExtractOptions(name="extract", ratio=0.15, min_context_tokens=0))(q, chunks)
    assert cut[0].text == "Rent is due monthly." and stats["over_budget"]   # 0.15 x 14 words: below any sentence
