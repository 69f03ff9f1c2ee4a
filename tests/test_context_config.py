"""The `context:` section: step options validated at their YAML path; bad corpora and chunks are UserErrors."""
import json

import pytest

from testbed.arm import ArmPlan
from testbed.config import validate
from testbed.context.pipeline import ContextPipeline
from testbed.context.retrieve import RetrieveOptions, RetrieveStep, load_corpus
from testbed.errors import UserError
from testbed.workloads.items import Chunk, Item

ITEM = Item("i1", "long_noisy", "How many stores does Marlowe Coffee operate?", ["212"],
            chunks=[Chunk("d", "Saltbridge Media operates 240 stores."), Chunk("g", "Marlowe Coffee operates 212 stores."),
                    Chunk("g2", "Marlowe Coffee operates 212 stores."), Chunk("o", "The kettle boils fast.")],
            gold_chunk_ids=["g"])


def config(steps, **arm):
    return {"name": "t", "model": {"id": "random:tiny-llama"}, "baseline": "a",
            "arms": {"a": {"engine": "hf", "context": {"steps": steps}, **arm}}}


@pytest.mark.parametrize("steps,expected", [
    ([{"name": "dedup"}, {"name": "budget", "budget_tokens": 0}], r"arms\.a\.context\.steps\[1\]\.budget_tokens: .*greater"),
    ([{"name": "dedup", "treshold": 0.5}], r"steps\[0\]\.treshold: dedup step: unknown key \(did you mean 'threshold'\?\)"),
    ([{"name": "dedupe"}], r"steps\[0\]\.name: unknown context step \(did you mean 'dedup'\?\)"),
    ([{"top_n": 3}], r"steps\[0\]: a step needs a name"),
    ([{"name": "extract"}], r"steps\[0\]: extract step: give exactly one of budget_tokens"),
    ([{"name": "rerank", "method": "cosine"}], r"steps\[0\]\.method"),
    ([{"name": "retrieve", "corpus": "/no/such/corpus.jsonl"}], r"steps\[0\]\.corpus: retrieve step: corpus file .* not found"),
    ([{"name": "extract", "ratio": 0}], r"steps\[0\]\.ratio: extract step: .*greater than 0"),
    ([{"name": "extract", "ratio": 1.5}], r"steps\[0\]\.ratio: extract step: .*less than or equal to 1"),
    ([{"name": "extract", "ratio": -0.2}], r"steps\[0\]\.ratio: extract step: .*greater than 0"),
    ([{"name": "prune", "keep_ratio": 0}], r"steps\[0\]\.keep_ratio: prune step: .*greater than 0"),
    ([{"name": "dedup"}, {"name": "rerank", "top_n": 0}], r"steps\[1\]\.top_n: rerank step: .*greater than or equal to 1"),
    ([{"name": "extract", "budget_tokens": 50, "top_n": 0}], r"steps\[0\]\.top_n: extract step: .*greater than or equal to 1"),
])
def test_bad_steps_name_their_yaml_path(steps, expected):
    with pytest.raises(UserError, match=expected):
        validate(config(steps))


def test_good_section_validates_each_step_with_its_options():
    cfg = validate(config([{"name": "dedup", "threshold": 0.9}, {"name": "rerank", "top_n": 2}]))
    steps = cfg.arms["a"].sections["context"].steps
    assert [type(s).__name__ for s in steps] == ["DedupOptions", "RerankOptions"]
    assert steps[0].threshold == 0.9 and steps[1].top_n == 2


def test_empty_and_malformed_corpus_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(UserError, match=r"steps\[0\]\.corpus: retrieve step: corpus file .* is empty"):
        validate(config([{"name": "retrieve", "corpus": str(empty)}]))
    no_id = tmp_path / "noid.jsonl"
    no_id.write_text(json.dumps({"text": "a chunk without an id"}) + "\n")
    with pytest.raises(UserError, match=r"line 1: every chunk needs a non-empty id"):
        validate(config([{"name": "retrieve", "corpus": str(no_id)}]))


@pytest.mark.parametrize("data,says", [
    (b'{"id": "q", "chunks": 5}\n', 'line 1: "chunks" must be a list'),
    (b'{"id": "q", "chunks": null}\n', 'line 1: "chunks" must be a list'),
    (b'{"id": "c1", "text": "x", "m": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "line 1: JSON nested too deeply"),
    (b'{"id": "c1", "text": "caf\xe9"}\n', "not UTF-8 text"),
    (json.dumps([{"id": "c1", "text": "x"}]).encode(), "line 1: a JSON array; write one chunk per line")])
def test_a_damaged_corpus_is_one_error_naming_its_line(tmp_path, data, says):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(data)
    with pytest.raises(UserError) as e:
        validate(config([{"name": "retrieve", "corpus": str(path)}]))
    assert f"corpus {path}" in e.value.message and says in e.value.message


def test_a_corpus_with_a_utf8_bom_loads(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_text("\ufeff" + json.dumps({"id": "c1", "text": "x"}) + "\n")
    assert [c.id for c in load_corpus(str(path))] == ["c1"]


def test_retrieve_from_a_corpus_file_and_from_the_item(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [{"id": "x", "text": "Rent is $7,250 a month."}, {"chunks": [{"id": "y", "text": "Marlowe Coffee has 212 stores."},
                                                                       {"id": "z", "text": "Kettles boil."}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert [c.id for c in load_corpus(str(path))] == ["x", "y", "z"]
    step = RetrieveStep(RetrieveOptions(name="retrieve", corpus=str(path), top_k=1))
    assert [c.id for c in step(ITEM.question, [])[0]] == ["y"]
    local = RetrieveStep(RetrieveOptions(name="retrieve", top_k=2))
    assert [c.id for c in local(ITEM.question, ITEM.chunks)[0]] == ["g", "g2"]
    with pytest.raises(UserError, match=r"context\.steps.*item i1 has no chunks and no corpus"):
        local(ITEM.question, [], item=ITEM)


def test_chunks_without_ids_are_a_user_error(tiny_lm):
    cfg = validate(config([{"name": "dedup"}]))
    pipe = ContextPipeline(cfg.arms["a"].sections["context"], tiny_lm)
    with pytest.raises(UserError, match=r"item i1: chunks\[1\] has no id"):
        pipe.prepare(ITEM, [ITEM.chunks[0], Chunk("", "text")])


def test_arm_plan_runs_the_pipeline_and_aggregates(tiny_lm):
    cfg = validate(config([{"name": "dedup"}, {"name": "rerank", "top_n": 1}]))
    plan = ArmPlan("a", cfg, tiny_lm)
    req = plan.make_request(ITEM, arrival=0.0)
    assert "Marlowe Coffee operates 212" in req.prompt_text and "Saltbridge" not in req.prompt_text
    st = req.stats["ContextPipeline"]
    assert st["chunks_before"] == 4 and st["chunks_after"] == 1 and st["duplicates_before"] == 1
    assert [s["name"] for s in st["steps"]] == ["retrieved", "dedup", "rerank"] and st["seconds"] > 0
    flat = plan.aggregate([{"stats": req.stats}])
    assert flat["gold_recall"] == 1.0 and flat["duplicate_rate_before"] == 0.25 and flat["duplicate_rate_after"] == 0
    assert flat["context_tokens_saved_pct"] > 50


def _pipe(steps, lm):
    return ContextPipeline(validate(config(steps)).arms["a"].sections["context"], lm)


def test_pre_run_check_names_the_budget_field_and_the_item(tiny_lm):
    pipe = _pipe([{"name": "dedup"}, {"name": "budget", "budget_tokens": 5}], tiny_lm)
    with pytest.raises(UserError, match=r"arms\.a\.context\.steps\[1\]\.budget_tokens = 5 is smaller than the "
                                        r"question of item i1") as e:
        pipe.check([ITEM], "a")
    assert e.value.fix.startswith("raise arms.a.context.steps[1].budget_tokens above")
    _pipe([{"name": "budget", "budget_tokens": 400}], tiny_lm).check([ITEM], "a")      # room left: no error


def test_pre_run_check_catches_missing_ids_and_a_retrieve_with_nothing_to_search(tiny_lm):
    no_id = Item("i2", "x", "q?", ["a"], chunks=[Chunk("", "text")])
    with pytest.raises(UserError, match=r"item i2: chunks\[0\] has no id"):
        _pipe([{"name": "dedup"}], tiny_lm).check([ITEM, no_id], "a")
    bare = Item("i3", "x", "q?", ["a"], chunks=[])
    with pytest.raises(UserError, match=r"arms\.a\.context\.steps\[0\]: retrieve has no corpus and item i3 has no chunks"):
        _pipe([{"name": "retrieve"}], tiny_lm).check([ITEM, bare], "a")


def test_by_category_runs_each_categorys_own_steps_and_checks_them(tiny_lm):
    cfg = config([])
    cfg["arms"]["a"]["context"]["by_category"] = {"long_noisy": [{"name": "dedup"}, {"name": "rerank", "top_n": 1}]}
    pipe = ContextPipeline(validate(cfg).arms["a"].sections["context"], tiny_lm)
    short = Item("s1", "lookup", ITEM.question, ITEM.answers, chunks=ITEM.chunks, gold_chunk_ids=["g"])
    kept, st = pipe.prepare(ITEM, ITEM.chunks)                     # long_noisy: dedup, then the best chunk
    assert [c.id for c in kept] == ["g"] and [s["name"] for s in st["steps"]] == ["retrieved", "dedup", "rerank"]
    kept, st = pipe.prepare(short, short.chunks)                   # any other category: the default, no steps
    assert kept == short.chunks and [s["name"] for s in st["steps"]] == ["retrieved"]
    pipe.check([short], "a")                                       # a category the workload lacks is unused
    cfg["arms"]["a"]["context"]["by_category"] = {"long_noisy": [{"name": "budget", "budget_tokens": 3}]}
    with pytest.raises(UserError, match=r"arms\.a\.context\.by_category\.long_noisy\[0\]\.budget_tokens = 3"):
        ContextPipeline(validate(cfg).arms["a"].sections["context"], tiny_lm).check([ITEM, short], "a")


@pytest.mark.parametrize("by_category,expected", [
    ({"long_noisy": [{"name": "extract", "ratio": 0}]}, r"context\.by_category\.long_noisy\[0\]\.ratio: extract step"),
    ({"long_noisy": {"name": "dedup"}}, r"context\.by_category\.long_noisy: a list of steps"),
])
def test_bad_by_category_steps_name_their_yaml_path(by_category, expected):
    cfg = config([])
    cfg["arms"]["a"]["context"]["by_category"] = by_category
    with pytest.raises(UserError, match=expected):
        validate(cfg)
