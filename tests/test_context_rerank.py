"""Rerank: BM25 and small-LM relevance order chunks; top_n and thresholds cut; order places the best."""
import numpy as np
import pytest

from testbed.context.lm import token_logprobs
from testbed.context.rerank import RerankOptions, RerankStep, arrange, lm_scores, select
from testbed.context.text import coverage
from testbed.workloads.items import Chunk

Q = "What is the monthly base rent under the lease?"
CHUNKS = [Chunk("fees", "Invoices are paid within 45 days."),
          Chunk("rent", "The tenant will pay a monthly base rent of $7,250 under the lease."),
          Chunk("lease", "The lease ends on its third anniversary."),
          Chunk("bike", "The e-bike battery recharges in five hours.")]


def rerank(lm=None, **kw):
    return RerankStep(RerankOptions(name="rerank", **kw), lm)(Q, CHUNKS)


def test_bm25_puts_the_answering_chunk_first_and_cuts_at_top_n():
    kept, stats = rerank(top_n=2)
    assert [c.id for c in kept] == ["rent", "lease"]
    assert stats["scores"]["rent"] > stats["scores"]["lease"] > 0 == stats["scores"]["bike"]


def test_thresholds_drop_low_scores():
    assert [c.id for c in rerank(min_score=0.01)[0]] == ["rent", "lease"]
    assert [c.id for c in rerank(min_relative=0.9)[0]] == ["rent"]


def test_order_best_last_and_retrieved():
    assert [c.id for c in rerank(top_n=2, order="best_last")[0]] == ["lease", "rent"]
    assert [c.id for c in rerank(top_n=2, order="retrieved")[0]] == ["rent", "lease"]
    assert arrange([3, 0, 2], "retrieved") == [0, 2, 3]


def test_select_breaks_ties_by_retrieved_rank():
    assert select(np.array([1.0, 2.0, 1.0, 0.0]), None, None, None) == [1, 0, 2, 3]
    assert select(np.array([1.0, 1.0]), None, None, 0.5) == [0, 1]       # flat scores: nothing to cut


def test_lm_rerank_scores_every_chunk_with_the_model(tiny_lm):
    kept, stats = rerank(tiny_lm, method="lm", top_n=3)
    scores = lm_scores(tiny_lm, Q, CHUNKS)
    assert [c.id for c in kept] == [CHUNKS[i].id for i in np.argsort(-scores, kind="stable")[:3]]
    assert all(s < 0 for s in stats["scores"].values())


def test_batched_logprobs_match_one_at_a_time(tiny_lm):
    seqs = [[5, 6, 7, 8, 9], [10, 11], [], [12, 13, 14]]
    batched = token_logprobs(tiny_lm, seqs, batch=4)
    single = [token_logprobs(tiny_lm, [s])[0] for s in seqs]
    assert [len(b) for b in batched] == [5, 2, 0, 3]
    for b, s in zip(batched, single):
        assert np.allclose(b, s, atol=1e-4)


HISTORY = [Chunk("old", "At the end of 2019 Marlowe Coffee operated 198 stores."),
           Chunk("beans", "Marlowe Coffee buys its beans from cooperatives in Peru. Marlowe Coffee roasts in Portland."),
           Chunk("now", "Marlowe Coffee roasts its beans in Portland. The chain currently operates 212 stores across the region.")]
STORES = "How many stores does Marlowe Coffee operate?"


def test_coverage_and_prefer_current_put_the_current_answering_chunk_first():
    plain = RerankStep(RerankOptions(name="rerank"))(STORES, HISTORY)[0]
    assert plain[0].id != "now"                                  # BM25 alone prefers the short or name-heavy chunks
    kept, stats = RerankStep(RerankOptions(name="rerank", top_n=1, coverage=2, prefer_current=True))(STORES, HISTORY)
    assert [c.id for c in kept] == ["now"] and stats["dated_past"] == ["old"]
    cov = coverage(STORES, [HISTORY[0].text])[0]
    assert stats["adjusted"]["old"] == pytest.approx(0.5 * stats["scores"]["old"] * cov ** 2, abs=1e-3)


def test_prefer_current_leaves_questions_about_the_past_alone():
    past_q = "How many stores did Marlowe Coffee operate at the end of 2019?"
    kept, stats = RerankStep(RerankOptions(name="rerank", top_n=1, prefer_current=True))(past_q, HISTORY)
    assert kept[0].id == "old" and stats["dated_past"] == []


def test_lm_scores_take_the_corrections_as_probabilities(tiny_lm):
    kept, stats = RerankStep(RerankOptions(name="rerank", method="lm", coverage=1, prefer_current=True), tiny_lm)(
        STORES, HISTORY)
    assert all(0 <= v <= 1 for v in stats["adjusted"].values()) and all(v < 0 for v in stats["scores"].values())
    assert [c.id for c in kept] == sorted(stats["adjusted"], key=lambda k: -stats["adjusted"][k])
