"""Rerank: BM25 and small-LM relevance order chunks; top_n and thresholds cut; order places the best."""
import numpy as np

from testbed.context.lm import token_logprobs
from testbed.context.rerank import RerankOptions, RerankStep, arrange, lm_scores, select
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
