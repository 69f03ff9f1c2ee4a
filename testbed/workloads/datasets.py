"""Load a workload's items: the shipped golden sets, our JSONL, SQuAD JSON or HotpotQA JSON, and the
standard benchmark workloads (random, ShareGPT, a file of prompts: workloads/standard.py).

    load_dataset("golden")                          # every golden category, interleaved
    load_dataset("golden/long_noisy", limit=5)
    load_dataset("data/my_items.jsonl", categories=["billing"])
    load_dataset("dev-v2.0.json")                   # SQuAD v1.1/v2, detected from the content

Bad input raises UserError naming `workload.dataset` (and file:line and field where known)
with the fix. The JSONL format is documented in docs/datasets.md.
"""
import json
from dataclasses import fields
from itertools import zip_longest
from pathlib import Path
from typing import Any

from testbed.errors import UserError
from testbed.workloads.items import Chunk, Item
from testbed.workloads.standard import (RandomSpec, hf_items, is_prompt_file, is_sharegpt, prompt_items,
                                        random_items, sharegpt_items)

GOLDEN_DIR = Path(__file__).parent / "golden"
SCORER_NAMES = ("exact", "f1", "contains", "json")
ITEM_KEYS = tuple(f.name for f in fields(Item))
REQUIRED = ("id", "question", "answers")
JSONL_FIX = 'one JSON object per line with at least "id", "question" and "answers" (see docs/datasets.md)'


def load_dataset(spec: str, categories: list[str] | None = None, limit: int | None = None, *,
                 distractors: int = 0, random: RandomSpec | None = None, seed: int = 0) -> list[Item]:
    """Items for a dataset spec, filtered to `categories` (in file order) and cut to `limit`.

    `distractors` applies to SQuAD only: how many other paragraphs of the same article join each
    question's context. `random` and `seed` shape the `random` dataset (`limit` requests).
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
    if spec.strip("/") == "golden":
        items = interleave(items)
    return items[:limit] if limit else items


def golden_categories() -> list[str]:
    return sorted(p.stem for p in GOLDEN_DIR.glob("*.jsonl"))


def interleave(items: list[Item]) -> list[Item]:
    """Round-robin across categories (sorted by name), each category in id order, so a prefix is mixed."""
    by_cat: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda it: it.id):
        by_cat.setdefault(it.category, []).append(it)
    rows = zip_longest(*(by_cat[c] for c in sorted(by_cat)))
    return [it for row in rows for it in row if it is not None]


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
    text = path.read_text(encoding="utf-8-sig")
    head = text.lstrip()[:1]
    if is_prompt_file(path, text):
        return prompt_items(path, text)
    if head == "[":
        data = _whole_json(path, text)
        if data and all(isinstance(d, dict) and "supporting_facts" in d for d in data):
            return hotpotqa_items(path, data)
        if is_sharegpt(data):
            return sharegpt_items(path, text)
        return _items_from_records(path, [(i + 1, d) for i, d in enumerate(data)], where="element")
    if head == "{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None                         # several lines: JSONL
        if isinstance(data, dict) and "data" in data and "question" not in data:
            return squad_items(path, data, distractors)
    return load_jsonl(path, text)


def load_jsonl(path: Path, text: str | None = None) -> list[Item]:
    """Our JSONL: one item per non-blank line."""
    text = path.read_text(encoding="utf-8-sig") if text is None else text
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise UserError(f"workload.dataset: {path}:{n}: not valid JSON ({e.msg} at column {e.colno})",
                            JSONL_FIX) from None
    return _items_from_records(path, records, where="line")


def _whole_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"workload.dataset: {path}:{e.lineno}: not valid JSON ({e.msg})",
                        "fix the JSON syntax, or write one item per line (JSONL)") from None


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
    gold = list(rec.get("gold_chunk_ids") or [])
    missing = sorted(set(gold) - {c.id for c in chunks})
    if missing:
        raise bad("gold_chunk_ids", f"names chunks that are not in \"chunks\": {missing}",
                  "list only ids of this item's chunks")
    return Item(id=str(rec["id"]), category=str(rec.get("category") or "default"), question=str(rec["question"]),
                answers=answers, scorer=scorer, chunks=chunks, gold_chunk_ids=gold, schema=rec.get("schema"),
                instruction=rec.get("instruction"), max_new_tokens=rec.get("max_new_tokens"),
                meta=dict(rec.get("meta") or {}))


def _chunks(raw: Any, bad) -> list[Chunk]:
    if not isinstance(raw, list):
        raise bad("chunks", "must be a list", 'use ["text", ...] or [{"id": "c1", "text": "..."}, ...]')
    chunks = []
    for i, c in enumerate(raw):
        if isinstance(c, str):
            chunks.append(Chunk(id=f"c{i}", text=c))
        elif isinstance(c, dict) and "id" in c and "text" in c:
            chunks.append(Chunk(id=str(c["id"]), text=str(c["text"]), source=c.get("source")))
        else:
            raise bad(f"chunks[{i}]", "needs both \"id\" and \"text\"",
                      'write chunks as plain strings (ids c0, c1, ... are given) or as {"id": ..., "text": ...}')
    ids = [c.id for c in chunks]
    if len(ids) != len(set(ids)):
        raise bad("chunks", "has duplicate chunk ids", "give every chunk of an item a unique id")
    return chunks


def squad_items(path: Path, data: dict, distractors: int = 0) -> list[Item]:
    """SQuAD v1.1/v2: one item per answerable question; its paragraph is the gold chunk, and up to
    `distractors` following paragraphs of the same article (wrapping round) join it, in article order."""
    items = []
    for article in data.get("data") or []:
        title = article.get("title") or ""
        paras = article.get("paragraphs") or []
        chunks = [Chunk(id=f"p{i}", text=p.get("context", ""), source=title or None) for i, p in enumerate(paras)]
        for i, para in enumerate(paras):
            picked = sorted({(i + k) % len(paras) for k in range(min(distractors, len(paras) - 1) + 1)})
            for qa in para.get("qas") or []:
                answers = list(dict.fromkeys(a["text"] for a in qa.get("answers") or [] if a.get("text")))
                if qa.get("is_impossible") or not answers:
                    continue
                items.append(Item(id=str(qa["id"]), category=title or "squad", question=qa["question"],
                                  answers=answers, scorer="f1", chunks=[chunks[j] for j in picked],
                                  gold_chunk_ids=[f"p{i}"], meta={"source": "squad"}))
    return _unique(path, items)


def hotpotqa_items(path: Path, data: list[dict]) -> list[Item]:
    """HotpotQA (distractor or fullwiki JSON): one chunk per context title; gold = supporting titles."""
    items = []
    for n, rec in enumerate(data, 1):
        if not rec.get("answer"):
            continue                            # the test split has no answers
        chunks, seen = [], set()
        for title, sentences in rec.get("context") or []:
            if title not in seen:
                seen.add(title)
                chunks.append(Chunk(id=title, text=" ".join(s.strip() for s in sentences), source=title))
        gold = list(dict.fromkeys(t for t, _ in rec.get("supporting_facts") or [] if t in seen))
        items.append(Item(id=str(rec.get("_id", f"hotpot-{n}")), category=rec.get("type") or "hotpotqa",
                          question=rec["question"], answers=[rec["answer"]], scorer="f1", chunks=chunks,
                          gold_chunk_ids=gold, meta={"source": "hotpotqa", "level": rec.get("level")}))
    return _unique(path, items)


def _unique(path: Path, items: list[Item]) -> list[Item]:
    seen = set()
    for it in items:
        if it.id in seen:
            raise UserError(f"workload.dataset: {path}: duplicate question id {it.id!r}",
                            "give every question a unique id")
        seen.add(it.id)
    return items
