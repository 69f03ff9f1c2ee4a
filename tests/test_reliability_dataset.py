"""Bad dataset files get one UserError naming the file (and line or record) and the fix, never a traceback."""
import json

import pytest

from testbed.errors import UserError
from testbed.workloads.datasets import load_dataset

GOOD = {"id": "a", "question": "q?", "answers": ["x"]}


def write(tmp_path, name: str, data: bytes | str):
    p = tmp_path / name
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return str(p)


def refused(spec: str) -> str:
    with pytest.raises(UserError) as e:
        load_dataset(spec)
    assert e.value.message.startswith("workload.dataset:") and e.value.fix
    return e.value.message


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\x01binary\x80\x81", json.dumps(GOOD).encode() + b"\n\xc3\x28\n",
                                  bytes(range(256))])
def test_non_utf8_and_binary_files(tmp_path, data):
    msg = refused(write(tmp_path, "d.jsonl", data))
    assert "UTF-8" in msg or "not valid JSON" in msg


@pytest.mark.parametrize("name,wrap", [("d.jsonl", lambda d: json.dumps({**GOOD, "meta": {"x": d}})),
                                       ("d.json", lambda d: "[" + d + "]")])
def test_deeply_nested_json(tmp_path, name, wrap):
    deep = "[" * 100_000 + "]" * 100_000
    text = wrap("PLACEHOLDER").replace('"PLACEHOLDER"', deep).replace("PLACEHOLDER", deep)
    assert "nested too deeply" in refused(write(tmp_path, name, text))


@pytest.mark.parametrize("field,value,says", [
    ("max_new_tokens", "abc", "max_new_tokens"), ("max_new_tokens", -5, "max_new_tokens"),
    ("max_new_tokens", 0, "max_new_tokens"), ("max_new_tokens", True, "max_new_tokens"),
    ("max_new_tokens", 2.5, "max_new_tokens"), ("meta", "not an object", "meta"), ("meta", [1, 2], "meta"),
    ("schema", "str", "schema"), ("instruction", {"a": 1}, "instruction"), ("question", {"a": 1}, "question"),
    ("gold_chunk_ids", 7, "gold_chunk_ids"), ("gold_chunk_ids", [{"a": 1}], "gold_chunk_ids"),
    ("chunks", "text", "chunks"), ("answers", [], "answers"), ("id", [1], "id"), ("id", None, "id"),
    ("question", None, "question"), ("chunks", [{"id": "c0", "text": None}], "chunks[0]"),
    ("chunks", [{"id": "c0", "text": {"a": 1}}], "chunks[0]"), ("chunks", [{"id": ["c0"], "text": "t"}], "chunks[0]"),
    ("schema", {"type": 5}, "schema"), ("schema", {"required": "date"}, "schema")])
def test_item_fields_of_the_wrong_type(tmp_path, field, value, says):
    msg = refused(write(tmp_path, "d.jsonl", json.dumps({**GOOD, field: value}) + "\n"))
    assert f"'{says}'" in msg and ":1:" in msg


def test_nan_is_not_json(tmp_path):
    assert "NaN" in refused(write(tmp_path, "d.jsonl", '{"id": "a", "question": "q", "answers": ["x"], '
                                                       '"max_new_tokens": NaN}\n'))


@pytest.mark.parametrize("doc,where", [
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q", "answers": [{"text": "a"}]}]}]}]}, "'id'"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "answers": [{"text": "a"}]}]}]}]}, "'question'"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": ["a"]}]}]}]},
     "data[0]"),
    ({"data": "not a list of articles"}, "data[0]"),
    ({"data": [{"paragraphs": 5}]}, "data[0]")])
def test_squad_missing_keys_and_wrong_shapes(tmp_path, doc, where):
    assert where in refused(write(tmp_path, "squad.json", json.dumps(doc)))


@pytest.mark.parametrize("rec,where", [
    ({"answer": "a", "supporting_facts": [], "context": []}, "'question'"),
    ({"question": "q", "answer": "a", "supporting_facts": [], "context": [["only a title"]]}, "element 1"),
    ({"question": "q", "answer": "a", "supporting_facts": 3, "context": []}, "element 1"),
    ({"question": "q", "answer": "a", "supporting_facts": [], "context": [[["list title"], ["s"]]]}, "element 1")])
def test_hotpotqa_missing_keys_and_wrong_shapes(tmp_path, rec, where):
    assert where in refused(write(tmp_path, "hotpot.json", json.dumps([rec])))


def test_a_good_file_still_loads(tmp_path):
    items = load_dataset(write(tmp_path, "d.jsonl", json.dumps({**GOOD, "max_new_tokens": 8, "meta": {"k": 1}})))
    assert items[0].max_new_tokens == 8 and items[0].meta == {"k": 1}
