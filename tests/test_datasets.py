"""The shipped golden sets (shape, determinism, the noise they promise) and the dataset loaders."""
import json
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest

from testbed.errors import UserError
from testbed.workloads.datasets import GOLDEN_DIR, load_dataset
from testbed.workloads.items import Item

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
MINIMUM = {"lookup": 22, "clause_extraction": 22, "json_extraction": 20, "multi_doc": 20, "long_noisy": 12,
           "grounded_output": 20}


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.lower()).strip()


@pytest.fixture(scope="module")
def golden() -> list[Item]:
    return load_dataset("golden")


@pytest.fixture(scope="module")
def by_id(golden) -> dict[str, Item]:
    return {it.id: it for it in golden}


def test_golden_counts_and_categories(golden):
    counts = {c: sum(it.category == c for it in golden) for c in MINIMUM}
    assert {it.category for it in golden} == set(MINIMUM)
    assert all(counts[c] >= n for c, n in MINIMUM.items()), counts
    assert len(golden) >= 116
    assert len({it.id for it in golden}) == len(golden)


def test_golden_lines_have_exactly_the_item_fields():
    for path in GOLDEN_DIR.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            assert list(rec) == [f.name for f in fields(Item)], path
            assert all(set(c) == {"id", "text", "source"} for c in rec["chunks"])


def test_generator_is_deterministic_and_shipped_files_are_current(tmp_path):
    for out in (tmp_path / "a", tmp_path / "b"):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_golden.py"), "--out", str(out)],
                       check=True, capture_output=True)
    shipped = sorted(p.name for p in GOLDEN_DIR.glob("*.jsonl"))
    assert sorted(p.name for p in (tmp_path / "a").glob("*.jsonl")) == shipped
    for name in shipped:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() == (GOLDEN_DIR / name).read_bytes(), f"rerun make_golden: {name}"


def test_gold_chunks_exist_and_scorers_are_known(golden):
    for it in golden:
        assert it.gold_chunk_ids and len(it.gold_chunks()) == len(it.gold_chunk_ids), it.id
        assert it.scorer in ("exact", "f1", "contains", "json")


def test_contains_answers_sit_only_in_gold_chunks(golden):
    for it in (it for it in golden if it.scorer == "contains"):
        assert any(norm(it.answers[0]) in norm(c.text) for c in it.gold_chunks()), it.id
        gold = set(it.gold_chunk_ids)
        for c in it.chunks:
            if c.id not in gold:
                assert not any(norm(a) in norm(c.text) for a in it.answers), (it.id, c.id)


def test_json_items_reference_validates_against_schema(golden):
    json_items = [it for it in golden if it.scorer == "json"]
    assert len(json_items) >= 13          # 10 json_extraction + the grounded records
    for it in json_items:
        jsonschema.Draft202012Validator.check_schema(it.schema)
        ref = json.loads(it.answers[0])
        jsonschema.validate(ref, it.schema)
        assert it.schema["type"] == "object" and set(it.schema["required"]) == set(ref)
        assert it.instruction.startswith("Reply with JSON only") and all(f'"{k}"' in it.instruction for k in ref)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({k: v for k, v in list(ref.items())[1:]}, it.schema)


def test_long_noisy_duplicates_are_real(golden):
    for it in (it for it in golden if it.category == "long_noisy"):
        text = {c.id: c.text for c in it.chunks}
        dups, near = it.meta["duplicate_of"], it.meta["near_duplicate_of"]
        assert len(dups) >= 2 and len(near) >= 2
        for copy, orig in dups.items():
            assert copy != orig and norm(text[copy]) == norm(text[orig])
        for copy, orig in near.items():
            a, b = set(norm(text[copy]).split()), set(norm(text[orig]).split())
            assert text[copy] != text[orig] and len(a & b) / len(a | b) > 0.6, (it.id, copy)


def test_long_noisy_distractors_and_gold_position(golden):
    for it in (it for it in golden if it.category == "long_noisy"):
        ids = [c.id for c in it.chunks]
        (gold,) = it.gold_chunk_ids
        pos = ids.index(gold)
        assert len(ids) / 4 <= pos <= 3 * len(ids) / 4, (it.id, pos, len(ids))
        distractors = it.meta["distractor_ids"]
        assert len(distractors) >= 8 and gold not in distractors and set(distractors) <= set(ids)
        # most distractors are the gold chunk's own template with another entity or value
        gold_words = set(norm(it.gold_chunks()[0].text).split())
        overlap = [len(set(norm(c.text).split()) & gold_words) / len(gold_words)
                   for c in it.chunks if c.id in distractors]
        assert sum(o > 0.5 for o in overlap) >= 6, (it.id, overlap)
        chars = sum(len(c.text) for c in it.chunks)
        assert 1200 <= it.meta["context_tokens_hint"] <= 1800 and 1200 * 4 <= chars <= 1800 * 4.5


def test_long_noisy_has_a_clean_twin(golden, by_id):
    for it in (it for it in golden if it.category == "long_noisy"):
        clean = by_id[it.meta["clean_item_id"]]
        assert clean.category in ("lookup", "clause_extraction")
        assert (clean.question, clean.answers) == (it.question, it.answers)
        assert [c.text for c in clean.gold_chunks()] == [c.text for c in it.gold_chunks()]
        assert sum(len(c.text) for c in clean.chunks) * 3 < sum(len(c.text) for c in it.chunks)


def test_grounded_outputs_copy_the_input(golden):
    items = [it for it in golden if it.category == "grounded_output"]
    assert {it.meta["task"] for it in items} == {"quote", "redline", "record"}
    for it in items:
        assert 96 <= it.max_new_tokens <= 160 and it.scorer in ("f1", "json")
        if it.meta["task"] == "quote":
            assert any(it.answers[0] in c.text for c in it.gold_chunks())
        if it.meta["task"] == "redline":
            old, new = it.meta["replace"]
            src = it.gold_chunks()[0].text
            assert it.answers[0].count(new) == src.count(old) > 1 and it.answers[0] != src


def test_multi_doc_needs_several_documents(golden):
    for it in (it for it in golden if it.category == "multi_doc"):
        assert len(it.chunks) >= 3 and len(it.gold_chunk_ids) >= 2


def test_splits_are_half_and_half_and_long_noisy_follows_its_clean_twin():
    from testbed.workloads.datasets import HELD_OUT, split_of
    items = load_dataset("golden", categories=list(MINIMUM) + list(HELD_OUT))
    for cat in MINIMUM:
        dev = sum(split_of(it) == "dev" for it in items if it.category == cat)
        assert dev == (MINIMUM[cat] + 1) // 2, cat
    by_id = {it.id: it for it in items}
    for it in (it for it in items if it.category == "long_noisy"):
        assert split_of(it) == split_of(by_id[it.meta["clean_item_id"]])
    assert all(split_of(it) == "test" for it in items if it.category in HELD_OUT)
    dev, test = load_dataset("golden", split="dev"), load_dataset("golden", split="test")
    assert not {it.id for it in dev} & {it.id for it in test} and len(dev) + len(test) == len(load_dataset("golden"))
    assert split_of(Item("x7", "c", "q?", ["a"])) == split_of(Item("x7", "other", "q2?", ["b"]))   # by id alone
    with pytest.raises(UserError, match="workload.split: no item .* in the dev split"):
        load_dataset("golden/retrieved_multi", split="dev")


def test_held_out_family_is_only_in_golden_when_named_and_states_answers_only_in_gold():
    from testbed.workloads.datasets import HELD_OUT
    assert not {it.category for it in load_dataset("golden")} & set(HELD_OUT)
    named = load_dataset("golden", categories=["lookup", *HELD_OUT])
    assert [it.category for it in named[:22]] == ["lookup"] * 22      # held-out categories come after
    multi = load_dataset("golden/retrieved_multi")
    toks = [it.meta["context_tokens_hint"] for it in multi]
    assert min(toks) >= 300 and max(toks) <= 2000 and len({it.meta["domain"] for it in multi}) == 6
    single = load_dataset("golden/retrieved_single")
    assert all(len(it.chunks) == 1 and 50 <= it.meta["context_tokens_hint"] <= 300 for it in single)
    for it in multi + single:
        gold = set(it.gold_chunk_ids)
        assert any(norm(it.answers[0]) in norm(c.text) for c in it.gold_chunks()), it.id
        assert not any(norm(it.answers[0]) in f" {norm(c.text)} " for c in it.chunks if c.id not in gold), it.id
        assert set(it.meta.get("duplicate_of", {})) <= set(it.meta.get("distractor_ids", []))


def test_golden_interleaves_categories_and_filters():
    first = load_dataset("golden", limit=6)
    assert len({it.category for it in first}) == 6
    assert [it.category for it in load_dataset("golden", categories=["lookup"], limit=3)] == ["lookup"] * 3
    assert {it.category for it in load_dataset("golden/long_noisy")} == {"long_noisy"}


def test_jsonl_loader_defaults():
    items = load_dataset(str(DATA / "items_tiny.jsonl"))
    assert [it.id for it in items] == ["t1", "t2", "t3"]
    assert [c.id for c in items[0].chunks] == ["c0", "c1"] and items[0].gold_chunk_ids == ["c0"]
    assert items[1].answers == ["the director"] and items[1].scorer == "exact" and items[1].chunks[0].source == "memo"
    assert items[2].chunks == [] and items[2].category == "closed_book" and items[1].category == "default"
    assert [it.id for it in load_dataset(str(DATA / "items_tiny.jsonl"), categories=["billing"])] == ["t1"]


def test_squad_loader(tmp_path):
    items = load_dataset(str(DATA / "squad_tiny.json"))
    assert [it.id for it in items] == ["sq-1", "sq-3", "sq-4"]          # sq-2 is unanswerable
    assert items[0].answers == ["212 metres", "212"] and items[0].scorer == "f1"
    assert items[0].category == "Lake_Orrin" and items[1].gold_chunk_ids == ["p1"]
    assert [c.id for c in items[1].chunks] == ["p1"]
    with_distractors = load_dataset(str(DATA / "squad_tiny.json"), distractors=1)
    assert [c.id for c in with_distractors[1].chunks] == ["p1", "p2"]
    assert [c.id for c in with_distractors[2].chunks] == ["p0"]        # a one-paragraph article
    disguised = tmp_path / "squad.jsonl"                               # the content decides, not the name
    shutil.copy(DATA / "squad_tiny.json", disguised)
    assert len(load_dataset(str(disguised))) == 3


def test_hotpotqa_loader():
    items = load_dataset(str(DATA / "hotpot_tiny.json"))
    assert [it.id for it in items] == ["hp-1", "hp-2"]                  # hp-3 has no answer
    assert [c.id for c in items[0].chunks] == ["Marlowe Coffee", "Port Ellis", "Kell Ferry"]
    assert items[0].gold_chunk_ids == ["Marlowe Coffee", "Port Ellis"] and items[0].scorer == "f1"
    assert items[0].chunks[1].text == "Port Ellis is a harbour city. The Willam River flows through Port Ellis."
    assert [it.category for it in items] == ["bridge", "comparison"]


def write(tmp_path, text: str, name: str = "d.jsonl") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD = '{"id": "a", "question": "q?", "answers": ["x"]}'
BAD_INPUTS = {
    "malformed": (GOOD + "\n{not json\n", r"d\.jsonl:2: not valid JSON"),
    "missing": ('{"id": "a", "question": "q?"}\n', r"d\.jsonl:1: field 'answers' is missing"),
    "duplicate": (GOOD + "\n" + GOOD + "\n", r"d\.jsonl:2: duplicate id 'a'"),
    "chunk_without_id": ('{"id": "a", "question": "q", "answers": ["x"], "chunks": [{"text": "t"}]}',
                         r"field 'chunks\[0\]' needs an \"id\" and a \"text\""),
    "scorer": ('{"id": "a", "question": "q", "answers": ["x"], "scorer": "bleu"}', r"field 'scorer' is 'bleu'"),
    "gold": ('{"id": "a", "question": "q", "answers": ["x"], "chunks": ["t"], "gold_chunk_ids": ["c9"]}',
             r"field 'gold_chunk_ids'"),
    "unknown_key": ('{"id": "a", "question": "q", "answers": ["x"], "answer": "x"}', r"field 'answer' is not"),
    "empty": ("\n\n", r"holds no items"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_jsonl_names_the_field(tmp_path, case):
    text, pattern = BAD_INPUTS[case]
    with pytest.raises(UserError, match=r"workload\.dataset") as e:
        load_dataset(write(tmp_path, text))
    assert re.search(pattern, e.value.message) and e.value.fix


def test_bad_specs(tmp_path):
    with pytest.raises(UserError, match="neither a golden set nor an existing file"):
        load_dataset(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="unknown golden category 'contracts'") as e:
        load_dataset("golden/contracts")
    assert "long_noisy" in e.value.fix
    with pytest.raises(UserError, match="workload.categories") as e:
        load_dataset(str(DATA / "items_tiny.jsonl"), categories=["legal"])
    assert "billing" in e.value.fix and "closed_book" in e.value.fix
    with pytest.raises(UserError, match="not valid JSON"):
        load_dataset(write(tmp_path, '[{"_id": "x", ', "h.json"))
