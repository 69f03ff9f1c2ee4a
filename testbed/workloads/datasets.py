"""Load a workload's items: the shipped golden sets, our JSONL, SQuAD JSON or HotpotQA JSON, and the
standard benchmark workloads (random, ShareGPT, a file of prompts: workloads/standard.py).

    load_dataset("golden")                          # every golden category, interleaved
    load_dataset("golden/long_noisy", limit=5)
    load_dataset("data/my_items.jsonl", categories=["billing"])
    load_dataset("dev-v2.0.json")                   # SQuAD v1.1/v2, detected from the content
    load_dataset("golden", split="dev")             # the items defaults may be chosen on (split_of)

Bad input raises UserError naming `workload.dataset` (and file:line and field where known)
with the fix. The JSONL format is documented in docs/datasets.md.
"""
import hashlib
import json
from dataclasses import fields
from itertools import zip_longest
from pathlib import Path
from typing import Any

import jsonschema

from testbed.errors import UserError
from testbed.workloads.items import Chunk, Item
from testbed.workloads.qa_sets import hotpotqa_items, squad_items
from testbed.workloads.standard import (RandomSpec, hf_items, is_prompt_file, is_sharegpt, prompt_items,
                                        random_items, sharegpt_items)

GOLDEN_DIR = Path(__file__).parent / "golden"
SCORER_NAMES = ("exact", "f1", "contains", "json")
ITEM_KEYS = tuple(f.name for f in fields(Item))
REQUIRED = ("id", "question", "answers")
JSONL_FIX = 'one JSON object per line with at least "id", "question" and "answers" (see docs/datasets.md)'
SPLITS = ("dev", "test")
# held-out golden categories (test split only): in `golden` only when named in `categories`, after the
# others, so `golden` and its prefixes give the same items as before they were added
HELD_OUT = ("retrieved_single", "retrieved_multi")


def split_of(item: Item) -> str:
    """dev or test: the item's meta.split where it has one (every golden item), else a hash of its id.

    The hash rule (blake2b of the id, even first byte: dev) is stable for an item whatever else the
    file holds, so a user's own dataset splits the same way every run."""
    label = item.meta.get("split")
    if label in SPLITS:
        return label
    return "dev" if hashlib.blake2b(item.id.encode(), digest_size=1).digest()[0] % 2 == 0 else "test"


def load_dataset(spec: str, categories: list[str] | None = None, limit: int | None = None, *,
                 distractors: int = 0, split: str | None = None, random: RandomSpec | None = None,
                 seed: int = 0) -> list[Item]:
    """Items for a dataset spec, filtered to `categories` (in file order) and `split`, cut to `limit`.

    `distractors` applies to SQuAD only: how many other paragraphs of the same article join each
    question's context. `split` (dev | test) keeps the items split_of() puts there. `random` and
    `seed` shape the `random` dataset (`limit` requests).
    """
    if limit is not None and limit < 1:
        raise UserError(f"workload.limit: must be at least 1, got {limit}", "drop it to use every item")
    if spec.strip() == "random":
        items = random_items(random, limit, seed)
    else:
        items = hf_items(spec.strip(), limit) if spec.startswith("hf:") else _load(spec, distractors)
    if not items:
        raise UserError(f"workload.dataset: {spec!r} holds no items", "point it at a file with at least one item")
    if categories:
        present = sorted({it.category for it in items})
        items = [it for it in items if it.category in set(categories)]
        if not items:
            raise UserError(f"workload.categories: no item of {spec!r} is in {list(categories)}",
                            f"use some of the categories present: {present}")
    elif spec.strip().strip("/") == "golden":
        items = [it for it in items if it.category not in HELD_OUT]
    if split is not None:
        items = [it for it in items if split_of(it) == split]
        if not items:
            raise UserError(f"workload.split: no item of {spec!r} is in the {split} split",
                            f"use split: {'test' if split == 'dev' else 'dev'} or drop workload.split")
    if spec.strip().strip("/") == "golden":
        items = interleave(items)
    return items[:limit] if limit else items


def golden_categories() -> list[str]:
    return sorted(p.stem for p in GOLDEN_DIR.glob("*.jsonl"))


def interleave(items: list[Item]) -> list[Item]:
    """Round-robin across categories (sorted by name), each category in id order, so a prefix is mixed;
    the held-out categories follow the others, round-robin among themselves."""
    by_cat: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda it: it.id):
        by_cat.setdefault(it.category, []).append(it)
    out = []
    for group in ([c for c in sorted(by_cat) if c not in HELD_OUT], [c for c in sorted(by_cat) if c in HELD_OUT]):
        out += [it for row in zip_longest(*(by_cat[c] for c in group)) for it in row if it is not None]
    return out


def _load(spec: str, distractors: int) -> list[Item]:
    name = spec.strip().rstrip("/")
    if name == "golden":
        return [it for c in golden_categories() for it in load_jsonl(GOLDEN_DIR / f"{c}.jsonl")]
    if name.startswith("golden/"):
        category = name.split("/", 1)[1]
        if category not in golden_categories():
            raise UserError(f"workload.dataset: unknown golden category {category!r}",
                            f"use golden or golden/<category> with one of {golden_categories()}")
        return load_jsonl(GOLDEN_DIR / f"{category}.jsonl")
    path = Path(name).expanduser()
    if not path.is_file():
        raise UserError(f"workload.dataset: {spec!r} is neither a golden set nor an existing file",
                        f"use golden, golden/<category> ({', '.join(golden_categories())}) or a path to "
                        "a JSONL / SQuAD / HotpotQA file")
    return load_file(path, distractors)


def load_file(path: Path, distractors: int = 0) -> list[Item]:
    """Detect the format from the content (not the extension) and parse it."""
    text = _read(path)
    head = text.lstrip()[:1]
    if is_prompt_file(path, text):
        return prompt_items(path, text)
    if head == "[":
        data = _whole_json(path, text)
        if data and all(isinstance(d, dict) and "supporting_facts" in d for d in data):
            return hotpotqa_items(path, data)
        if is_sharegpt(data):
            return sharegpt_items(path, text)
        if data and all(isinstance(d, dict) and "prompt" in d and "question" not in d for d in data):
            raise UserError(f"workload.dataset: {path}: a JSON array of prompts",      # else: "id is missing"
                            'write one {"prompt": "...", "output_tokens": 32} object per line (JSONL)')
        return _items_from_records(path, [(i + 1, d) for i, d in enumerate(data)], where="element")
    if head == "{":
        try:
            data = _json(text)
        except json.JSONDecodeError:
            data = None                         # several lines: JSONL
        except RecursionError:
            raise UserError(f"workload.dataset: {path}: JSON nested too deeply", JSONL_FIX) from None
        if isinstance(data, dict) and "data" in data and "question" not in data:
            return squad_items(path, data, distractors)
    return load_jsonl(path, text)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"workload.dataset: {path}: not UTF-8 text (byte {e.start}); is it a binary file?",
                        "give a UTF-8 JSONL, SQuAD or HotpotQA JSON file") from None
    except OSError as e:
        raise UserError(f"workload.dataset: {path}: cannot be read ({e.strerror})", "check the path") from None


def _json(text: str) -> Any:
    """json.loads, refusing NaN and Infinity (not JSON, and they break the scorers' arithmetic)."""
    return json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> None:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def load_jsonl(path: Path, text: str | None = None) -> list[Item]:
    """Our JSONL: one item per non-blank line."""
    text = _read(path) if text is None else text
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((n, _json(line)))
        except json.JSONDecodeError as e:
            raise UserError(f"workload.dataset: {path}:{n}: not valid JSON ({e.msg} at column {e.colno})",
                            JSONL_FIX) from None
        except RecursionError:
            raise UserError(f"workload.dataset: {path}:{n}: JSON nested too deeply", JSONL_FIX) from None
    return _items_from_records(path, records, where="line")


def _whole_json(path: Path, text: str) -> Any:
    try:
        return _json(text)
    except json.JSONDecodeError as e:
        raise UserError(f"workload.dataset: {path}:{e.lineno}: not valid JSON ({e.msg})",
                        "fix the JSON syntax, or write one item per line (JSONL)") from None
    except RecursionError:
        raise UserError(f"workload.dataset: {path}: JSON nested too deeply", "flatten the file") from None


def _items_from_records(path: Path, records: list[tuple[int, Any]], where: str) -> list[Item]:
    items, seen = [], {}
    for n, rec in records:
        at = f"{path}:{n}" if where == "line" else f"{path} {where} {n}"
        it = item_from_dict(rec, at)
        if it.id in seen:
            raise UserError(f"workload.dataset: {at}: duplicate id {it.id!r} (first at {seen[it.id]})",
                            "give every item a unique id")
        seen[it.id] = at
        items.append(it)
    return items


def item_from_dict(rec: Any, at: str) -> Item:
    """One Item from a dict in our schema; `at` ("file:line") goes into every error message."""
    def bad(field: str, problem: str, fix: str) -> UserError:
        return UserError(f"workload.dataset: {at}: field {field!r} {problem}", fix)

    if not isinstance(rec, dict):
        raise UserError(f"workload.dataset: {at}: expected a JSON object, got {type(rec).__name__}", JSONL_FIX)
    for key in REQUIRED:
        if key not in rec:
            raise bad(key, "is missing", JSONL_FIX)
    unknown = sorted(set(rec) - set(ITEM_KEYS))
    if unknown:
        raise bad(unknown[0], "is not an item field", f"use only {list(ITEM_KEYS)}; put extra data under \"meta\"")
    answers = [rec["answers"]] if isinstance(rec["answers"], str) else rec["answers"]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise bad("answers", "must be a non-empty list of strings", 'e.g. "answers": ["90 days"]')
    scorer = rec.get("scorer") or "contains"
    if scorer not in SCORER_NAMES:
        raise bad("scorer", f"is {scorer!r}, not a known scorer", f"use one of {list(SCORER_NAMES)}")
    chunks = _chunks(rec.get("chunks") or [], bad)
    gold = rec.get("gold_chunk_ids") or []
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise bad("gold_chunk_ids", "must be a list of chunk ids (strings)", 'e.g. "gold_chunk_ids": ["c0"]')
    missing = sorted(set(gold) - {c.id for c in chunks})
    if missing:
        raise bad("gold_chunk_ids", f"names chunks that are not in \"chunks\": {missing}",
                  "list only ids of this item's chunks")
    _check_types(rec, bad)
    return Item(id=str(rec["id"]), category=str(rec.get("category") or "default"), question=str(rec["question"]),
                answers=answers, scorer=scorer, chunks=chunks, gold_chunk_ids=gold, schema=rec.get("schema"),
                instruction=rec.get("instruction"), max_new_tokens=rec.get("max_new_tokens"),
                meta=dict(rec.get("meta") or {}))


def _check_types(rec: dict, bad) -> None:
    """The optional fields' types: a wrong one would crash mid-run, after the run directory exists."""
    n = rec.get("max_new_tokens")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise bad("max_new_tokens", f"must be a whole number of tokens >= 1, got {n!r}",
                  'e.g. "max_new_tokens": 64, or leave it out to use workload.max_new_tokens')
    for key, kind, example in (("meta", dict, '"meta": {"source": "x"}'), ("schema", dict, '"schema": {"type": '
                               '"object"}'), ("instruction", str, '"instruction": "Answer with the date only."')):
        if rec.get(key) is not None and not isinstance(rec[key], kind):
            raise bad(key, f"must be a JSON {'object' if kind is dict else 'string'}, got {type(rec[key]).__name__}",
                      f"e.g. {example}")
    for key in ("id", "question", "category"):
        value = rec.get(key)
        if isinstance(value, (dict, list)) or (value is None and key in REQUIRED):     # str(None) is "None"
            raise bad(key, f"must be a string, got {'null' if value is None else type(value).__name__}",
                      f'e.g. "{key}": "..."')
    if isinstance(rec.get("schema"), dict):     # a bad schema would raise in the json scorer, mid-run
        try:
            jsonschema.validators.validator_for(rec["schema"]).check_schema(rec["schema"])
        except jsonschema.SchemaError as e:
            raise bad("schema", f"is not a valid JSON Schema ({e.message})",
                      'e.g. "schema": {"type": "object", "required": ["date"]}') from None


def _chunks(raw: Any, bad) -> list[Chunk]:
    if not isinstance(raw, list):
        raise bad("chunks", "must be a list", 'use ["text", ...] or [{"id": "c1", "text": "..."}, ...]')
    chunks = []
    for i, c in enumerate(raw):
        if isinstance(c, str):
            chunks.append(Chunk(id=f"c{i}", text=c))
        elif (isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("id"), (str, int))
              and isinstance(c.get("source"), (str, type(None)))):
            chunks.append(Chunk(id=str(c["id"]), text=c["text"], source=c.get("source")))
        else:
            raise bad(f"chunks[{i}]", "needs an \"id\" and a \"text\" string (and \"source\", if any, a string)",
                      'write chunks as plain strings (ids c0, c1, ... are given) or as {"id": ..., "text": ...}')
    ids = [c.id for c in chunks]
    if len(ids) != len(set(ids)):
        raise bad("chunks", "has duplicate chunk ids", "give every chunk of an item a unique id")
    return chunks
