"""Compression: extraction fits its token budget and keeps ids; pruning keeps its ratio and word order."""
import pytest

from testbed.context.compress import (ExtractOptions, ExtractStep, PruneOptions, PruneStep, prune_words,
                                      word_spans)
from testbed.context.text import count_tokens
from testbed.workloads.items import Chunk

Q = "How much written notice is needed to terminate the Halvard agreement for convenience?"
GOLD = Chunk("gold", "Master Services Agreement between Halvard Logistics and Corvid Systems (2022), clause 4. "
                     "Either party may terminate this agreement for convenience by giving at least 90 days of "
                     "written notice. Termination does not affect fees already due.")
FEES = Chunk("fees", "Master Services Agreement between Halvard Logistics and Corvid Systems (2022), clause 2. "
                     "Halvard Logistics will pay each undisputed invoice within 45 days. Late amounts carry interest.")
BIKE = Chunk("bike", "The Strada e-bike uses a 540 Wh battery. It recharges in about five hours.")


def extract(lm, **kw):
    return ExtractStep(ExtractOptions(name="extract", **kw), lm)(Q, [FEES, BIKE, GOLD])


@pytest.mark.parametrize("budget", [30, 45, 80])
def test_extract_fits_the_budget_and_keeps_ids(tiny_lm, budget):
    kept, stats = extract(tiny_lm, budget_tokens=budget)
    used = sum(count_tokens(tiny_lm, [s]) [0] for c in kept for s in _sentences_of(c))
    assert used <= budget and stats["budget_tokens"] == budget
    assert {c.id for c in kept} <= {"gold", "fees", "bike"}
    for c in kept:                               # text is a subsequence of the original's sentences
        src = {"gold": GOLD, "fees": FEES, "bike": BIKE}[c.id].text
        assert all(s in src for s in _sentences_of(c))


def _sentences_of(c):
    from testbed.context.text import sentences
    return sentences(c.text)


def test_extract_picks_the_answer_sentence_with_its_lead(tiny_lm):
    kept, _ = extract(tiny_lm, budget_tokens=count_tokens(tiny_lm, [GOLD.text])[0])
    assert [c.id for c in kept] == ["gold"]
    assert "90 days" in kept[0].text and kept[0].text.startswith("Master Services Agreement")
    assert "fees already due" not in kept[0].text   # the unrelated last sentence went


def test_extract_ratio_and_unmatched_sentences(tiny_lm):
    total = sum(count_tokens(tiny_lm, [c.text for c in (FEES, BIKE, GOLD)]))
    kept, stats = extract(tiny_lm, ratio=0.9, min_context_tokens=0)
    assert stats["budget_tokens"] == int(0.9 * total)
    assert "bike" not in {c.id for c in kept}      # shares no word with the question
    kept, _ = extract(tiny_lm, ratio=1.0, drop_unmatched=False, min_context_tokens=0)
    assert {c.id for c in kept} == {"gold", "fees", "bike"}


def test_extract_options_need_exactly_one_budget():
    with pytest.raises(ValueError):
        ExtractOptions(name="extract")
    with pytest.raises(ValueError):
        ExtractOptions(name="extract", budget_tokens=10, ratio=0.5)


def test_prune_words_keeps_the_most_informative_words_in_order():
    text = "alpha beta gamma delta"
    spans = [(0, 5), (6, 10), (11, 16), (17, 22)]
    owner = [0, 1, 2, 2, 3]                      # gamma is two tokens
    logprobs = [0.0, -0.1, -3.0, -2.0, -4.0]     # word information: alpha kept (first), beta 0.1, gamma 5, delta 4
    assert prune_words(text, spans, owner, logprobs, keep_ratio=0.6) == "alpha gamma"      # 3 of 5 tokens
    assert prune_words(text, spans, owner, logprobs, keep_ratio=0.4) == "alpha delta"      # gamma does not fit
    assert prune_words(text, spans, owner, logprobs, keep_ratio=1.0) == text


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.8])
def test_prune_hits_its_ratio_and_keeps_ids(tiny_lm, ratio):
    chunks = [GOLD, FEES, BIKE]
    kept, _ = PruneStep(PruneOptions(name="prune", keep_ratio=ratio, min_context_tokens=0), tiny_lm)(Q, chunks)
    assert [c.id for c in kept] == ["gold", "fees", "bike"]
    for src, out in zip(chunks, kept):
        n_src = len(word_spans(tiny_lm, src.text)[0])
        n_out = count_tokens(tiny_lm, [out.text])[0]
        assert n_out <= ratio * n_src * 1.15 + 3      # word re-joining can merge or split a token
        words = src.text.split()
        it = iter(words)
        assert all(w in it for w in out.text.split())   # an ordered subsequence of the words


CEO_Q = "Who is the chief executive of Brindle Analytics?"
OLD = Chunk("old", "From 2012 until 2019 the chief executive of Brindle Analytics was Samir Haddad, "
                   "who has since retired.")
NOW = Chunk("now", "Brindle Analytics is a data consultancy with offices in three states. "
                   "Its chief executive is Maren Okafor, who leads a team of analysts.")
TWIN = Chunk("twin", "Brindle Analytica is a data consultancy with offices in three states. "
                     "Its chief executive is Lena Vostrikova, who leads a team of analysts.")


def test_extract_ranks_sentences_with_the_rerankers_temporal_rule():
    def best(**kw):
        kept, _ = ExtractStep(ExtractOptions(name="extract", budget_tokens=200, top_n=1, **kw))(CEO_Q, [OLD, TWIN, NOW])
        return kept
    assert [c.id for c in best()] == ["old"]          # plain BM25: the archived sentence names everything asked
    kept = best(prefer_current=True, coverage=2)
    assert [c.id for c in kept] == ["now"] and kept[0].text == NOW.text   # the current fact, read with its lead


def test_extract_keeps_the_best_sentence_alone_when_its_lead_does_not_fit():
    answer = "Its chief executive is Maren Okafor, who leads a team of analysts."
    n = count_tokens(None, [answer])[0]
    kept, stats = ExtractStep(ExtractOptions(name="extract", budget_tokens=n, prefer_current=True))(CEO_Q, [OLD, NOW])
    assert [(c.id, c.text) for c in kept] == [("now", answer)]
    assert stats["chunks_without_lead"] == 1
    short = ExtractOptions(name="extract", budget_tokens=n - 1, prefer_current=True)
    kept, stats = ExtractStep(short)(CEO_Q, [OLD, NOW])
    assert [(c.id, c.text) for c in kept] == [("now", answer)]   # does not fit: kept whole, never cut or emptied
    assert stats["over_budget"]


def test_extract_orders_chunks_best_last_and_takes_a_repeated_sentence_once():
    opts = dict(name="extract", budget_tokens=200, prefer_current=True, coverage=2)
    first, _ = ExtractStep(ExtractOptions(order="best_first", **opts))(CEO_Q, [NOW, OLD, NOW, TWIN])
    last, stats = ExtractStep(ExtractOptions(order="best_last", **opts))(CEO_Q, [NOW, OLD, NOW, TWIN])
    assert first[0].id == "now" and [c.id for c in last] == [c.id for c in first][::-1]
    assert [c.id for c in last].count("now") == 1              # the exact copy adds nothing
    assert stats["sentences_kept"] == sum(len(_sentences_of(c)) for c in last)


def test_extract_top_n_and_min_relative_cut_the_tail():
    opts = dict(name="extract", budget_tokens=200, prefer_current=True, coverage=2)
    everything, _ = ExtractStep(ExtractOptions(**opts))(CEO_Q, [OLD, TWIN, NOW])
    one, _ = ExtractStep(ExtractOptions(top_n=1, **opts))(CEO_Q, [OLD, TWIN, NOW])
    near, _ = ExtractStep(ExtractOptions(min_relative=0.99, **opts))(CEO_Q, [OLD, TWIN, NOW])
    assert {c.id for c in everything} == {"old", "twin", "now"}
    assert [c.id for c in one] == [c.id for c in near] == ["now"]
