"""SQuAD (v1.1/v2) and HotpotQA JSON as workload items, as the files come; a missing key or a wrong type
inside a record is a UserError naming the record (data[i] or element i) and the expected shape.

    items = squad_items(path, json.loads(path.read_text()), distractors=2)
"""
from contextlib import contextmanager
from pathlib import Path

from testbed.errors import UserError
from testbed.workloads.items import Chunk, Item


@contextmanager
def _shaped(path: Path, where: str, fix: str):
    """A missing key or a wrong type deep inside a SQuAD/HotpotQA record, as a UserError naming the record."""
    try:
        yield
    except KeyError as e:
        raise UserError(f"workload.dataset: {path} {where}: missing key {e.args[0]!r}", fix) from None
    except (TypeError, AttributeError, ValueError) as e:
        raise UserError(f"workload.dataset: {path} {where}: unexpected shape ({e})", fix) from None


SQUAD_FIX = "SQuAD JSON: data[].paragraphs[].{context, qas[].{id, question, answers[].text}}"
HOTPOT_FIX = "HotpotQA JSON: a list of {_id, question, answer, context: [[title, [sentences]]], supporting_facts}"


def squad_items(path: Path, data: dict, distractors: int = 0) -> list[Item]:
    """SQuAD v1.1/v2: one item per answerable question; its paragraph is the gold chunk, and up to
    `distractors` following paragraphs of the same article (wrapping round) join it, in article order."""
    items: list[Item] = []
    with _shaped(path, "data", SQUAD_FIX):
        articles = list(data.get("data") or [])
    for n, article in enumerate(articles):
        with _shaped(path, f"data[{n}]", SQUAD_FIX):
            items += _squad_article(article, distractors)
    return _unique(path, items)


def _squad_article(article: dict, distractors: int) -> list[Item]:
    title = str(article.get("title") or "")
    paras = article.get("paragraphs") or []
    chunks = [Chunk(id=f"p{i}", text=str(p.get("context", "")), source=title or None) for i, p in enumerate(paras)]
    items = []
    for i, para in enumerate(paras):
        picked = sorted({(i + k) % len(paras) for k in range(min(distractors, len(paras) - 1) + 1)})
        for qa in para.get("qas") or []:
            answers = list(dict.fromkeys(str(a["text"]) for a in qa.get("answers") or [] if a.get("text")))
            if qa.get("is_impossible") or not answers:
                continue
            items.append(Item(id=str(qa["id"]), category=title or "squad", question=str(qa["question"]),
                              answers=answers, scorer="f1", chunks=[chunks[j] for j in picked],
                              gold_chunk_ids=[f"p{i}"], meta={"source": "squad"}))
    return items


def hotpotqa_items(path: Path, data: list[dict]) -> list[Item]:
    """HotpotQA (distractor or fullwiki JSON): one chunk per context title; gold = supporting titles."""
    items = []
    for n, rec in enumerate(data, 1):
        if not rec.get("answer"):
            continue                            # the test split has no answers
        with _shaped(path, f"element {n}", HOTPOT_FIX):
            items.append(_hotpot_item(rec, n))
    return _unique(path, items)


def _hotpot_item(rec: dict, n: int) -> Item:
    chunks, seen = [], set()
    for title, sentences in rec.get("context") or []:
        if title not in seen:
            seen.add(title)
            chunks.append(Chunk(id=str(title), text=" ".join(s.strip() for s in sentences), source=str(title)))
    gold = list(dict.fromkeys(str(t) for t, _ in rec.get("supporting_facts") or [] if t in seen))
    return Item(id=str(rec.get("_id", f"hotpot-{n}")), category=str(rec.get("type") or "hotpotqa"),
                question=str(rec["question"]), answers=[str(rec["answer"])], scorer="f1", chunks=chunks,
                gold_chunk_ids=gold, meta={"source": "hotpotqa", "level": rec.get("level")})


def _unique(path: Path, items: list[Item]) -> list[Item]:
    seen = set()
    for it in items:
        if it.id in seen:
            raise UserError(f"workload.dataset: {path}: duplicate question id {it.id!r}",
                            "give every question a unique id")
        seen.add(it.id)
    return items
