"""The llmlingua reference step: offline with the arm's model as scorer, ids kept, never empty, a clear error
when the package is missing (an optional extra: pip install -e .[llmlingua])."""
import pytest

from testbed.config import validate
from testbed.errors import UserError
from testbed.workloads.items import Chunk

CHUNKS = [Chunk("a", "Policy schedule for Dunmore Bakeries Ltd. A deductible of $1,250 applies to each claim. "
                     "Premiums are payable in advance. Cover applies only at the premises named in the schedule."),
          Chunk("b", "Order form: Quayside Hotels. The annual fee is $38,400, invoiced in advance. "
                     "Support is available on business days. Prices exclude sales tax."),
          Chunk("c", "Building permit for 9 Mill Street, Arlow. Maximum height: 7.2 metres above ground level. "
                     "Neighbours have been notified. Site hours are 8am to 6pm on weekdays.")]


def test_map_back_keeps_each_pieces_chunk_id_in_order():
    from testbed.context.lingua import map_back
    out = map_back(["Policy Dunmore deductible $1,250", "permit 9 Mill Street height 7.2 metres"], CHUNKS)
    assert [c.id for c in out] == ["a", "c"]
    assert map_back(["fee $38,400 merged-token"], CHUNKS)[0].id == "b"      # not a subsequence: most shared words


def test_llmlingua_compresses_offline_with_the_arms_model_and_keeps_ids(tiny_lm, monkeypatch):
    pytest.importorskip("llmlingua")
    import tiktoken
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda *a: pytest.fail("tiktoken download attempted"))
    from testbed.context.lingua import LinguaOptions, LinguaStep
    step = LinguaStep(LinguaOptions(name="llmlingua", rate=0.4, min_context_tokens=0), tiny_lm)
    out, stats = step("What is the deductible for Dunmore Bakeries?", CHUNKS)
    assert out and {c.id for c in out} <= {"a", "b", "c"}
    assert stats["compressed_tokens"] < stats["origin_tokens"]
    small, stats = LinguaStep(LinguaOptions(name="llmlingua", rate=0.4), tiny_lm)("q?", CHUNKS)
    assert small == CHUNKS and "passed_whole" in stats       # below min_context_tokens: untouched
    assert tiny_lm.tokenizer.padding_side != "left" or step._pc.tokenizer is not tiny_lm.tokenizer


def test_a_missing_llmlingua_is_an_error_with_the_install_line_before_the_run(monkeypatch, tmp_path):
    import testbed.context.lingua as lingua
    from testbed.runner import Experiment
    monkeypatch.setattr(lingua, "available", lambda: False)
    cfg = validate({"name": "t", "model": {"id": "random:tiny-llama"}, "baseline": "a", "output_dir": str(tmp_path),
                    "arms": {"a": {"engine": "hf", "context": {"steps": [{"name": "llmlingua", "rate": 0.5}]}}}})
    with pytest.raises(UserError, match=r"context\.steps\[0\]: the llmlingua step needs the llmlingua package") as e:
        Experiment(cfg, limit=1, progress=False)
    assert e.value.fix.startswith("pip install -e .[llmlingua]") and not list(tmp_path.iterdir())
