"""Dedup: exact and near duplicates go, the best-ranked copy stays, a different fact is never a copy."""
import json
from pathlib import Path

import numpy as np
import pytest

from testbed.context.dedup import DedupOptions, DedupStep, duplicate_of, facts, similarity_matrix
from testbed.workloads.items import Chunk

GOLDEN = Path(__file__).resolve().parents[1] / "testbed" / "workloads" / "golden" / "long_noisy.jsonl"

CEO = "Brindle Analytics is a data consultancy with offices in three states. Its chief executive is Maren Okafor."
REWORDED = "Brindle Analytics is a data consultancy with branches in three states. Its chief executive is Maren Okafor."
DISTRACTOR = "Brindle Analytica is a data consultancy with offices in three states. Its chief executive is Lena Vostrikova."
OTHER = "The Strada e-bike from Velora uses a 540 Wh battery and recharges in about five hours."


def run(chunks, **kw):
    return DedupStep(DedupOptions(name="dedup", **kw))("who is the ceo?", chunks)


def test_exact_duplicates_by_text_and_by_id_keep_the_first_copy():
    chunks = [Chunk("a", CEO), Chunk("b", OTHER), Chunk("c", "  brindle ANALYTICS is a data consultancy, with offices "
                                                           "in three states; its chief executive is Maren Okafor"),
              Chunk("b", "a different text under a repeated id")]
    kept, stats = run(chunks, near=False)
    assert [c.id for c in kept] == ["a", "b"] and kept[1].text == OTHER
    assert stats["removed_exact"] == 2 and stats["removed"] == ["c", "b"]


def test_near_duplicate_removed_but_best_ranked_copy_kept():
    kept, stats = run([Chunk("copy", REWORDED), Chunk("other", OTHER), Chunk("orig", CEO)])
    assert [c.id for c in kept] == ["copy", "other"]
    assert stats["removed_near"] == 1 and stats["removed"] == ["orig"]


def test_confusable_distractor_is_not_a_duplicate():
    # templated text: the distractor shares most of its wording with the gold chunk
    assert similarity_matrix([CEO, DISTRACTOR], shingle=1)[0, 1] > 0.6
    kept, _ = run([Chunk("d", DISTRACTOR), Chunk("gold", CEO)])
    assert [c.id for c in kept] == ["d", "gold"]
    kept, _ = run([Chunk("d", DISTRACTOR), Chunk("gold", CEO)], same_facts=False, threshold=0.6)
    assert [c.id for c in kept] == ["d"]          # wording alone would drop the gold fact


def test_facts_are_names_and_numbers_without_stop_words():
    assert facts("Its chief executive is Maren Okafor, paid $2,500 in 2022.") == {"maren", "okafor", "2", "500", "2022"}


def test_threshold_controls_near_duplicates():
    chunks = [Chunk("a", CEO), Chunk("b", REWORDED)]
    assert len(run(chunks, threshold=0.99)[0]) == 2
    assert len(run(chunks, threshold=0.5)[0]) == 1


def test_minhash_estimates_jaccard():
    texts = [CEO, REWORDED, OTHER, DISTRACTOR]
    exact = similarity_matrix(texts, 2)
    est = similarity_matrix(texts, 2, method="minhash", num_perm=512)
    assert np.abs(exact - est).max() < 0.12
    assert duplicate_of([Chunk(str(i), t) for i, t in enumerate(texts)], method="minhash", num_perm=256) \
        == [None, (0, "near"), None, None]


@pytest.mark.skipif(not GOLDEN.exists(), reason="golden long_noisy set not generated")
def test_golden_noisy_injected_duplicates_removed_and_no_gold_lost():
    pairs = removed_pairs = 0
    for line in GOLDEN.read_text().splitlines():
        d = json.loads(line)
        chunks = [Chunk(c["id"], c["text"]) for c in d["chunks"]]
        kept = {c.id for c in run(chunks)[0]}
        assert set(d["gold_chunk_ids"]) <= kept, d["id"]
        copies = {**d["meta"]["duplicate_of"], **d["meta"]["near_duplicate_of"]}
        pairs += len(copies)
        removed_pairs += sum(not (a in kept and b in kept) for a, b in copies.items())
    assert pairs and removed_pairs / pairs >= 0.95
