"""Quality scorers: was the answer right?

Each golden item names its scorer; `score_output` runs every text scorer (so arms can be
compared on the same footing) plus the item's own, and decides `correct` by the item's scorer:

    >>> score_output(item, "The answer is 42.")
    {"scores": {"exact": 0.0, "f1": 0.4, "contains": 1.0}, "score": 1.0, "correct": True}

Normalisation is SQuAD's: lowercase, drop punctuation and the articles a/an/the, collapse
whitespace. `contains` matches whole normalised tokens ("1" is not found in "10").
"""
import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import jsonschema

from testbed.registry import Registry
from testbed.workloads.items import Item

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclass(frozen=True)
class Scorer:
    """A scorer: `score(text, item)` -> named values in [0, 1]; `key` is the item's score; `correct` decides."""
    score: Callable[[str, Item], dict[str, float]]
    key: str
    correct: Callable[[dict[str, float]], bool]


SCORERS: Registry[Scorer] = Registry("scorer")
TEXT_SCORERS = ("exact", "f1", "contains")     # run on every item


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between two strings; two empty strings score 1."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, reference: str) -> float:
    ref = normalize_answer(reference)
    return float(bool(ref) and f" {ref} " in f" {normalize_answer(prediction)} ")


def _best(fn: Callable[[str, str], float], text: str, answers: list[str]) -> float:
    return max((fn(text, a) for a in answers), default=0.0)


def extract_json_object(text: str) -> dict | None:
    """The first JSON object in `text`, wherever it sits (prose, ```json fences); None if there is none."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _norm_value(v: Any) -> Any:
    """Compare JSON values loosely: strings SQuAD-normalised, numbers (and numeric strings) as floats."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip().replace(",", ""))
        except ValueError:
            return normalize_answer(v)
    if isinstance(v, list):
        return [_norm_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm_value(x) for k, x in v.items()}
    return v


def json_field_accuracy(output: dict, reference: dict) -> float:
    """Share of the reference's top-level fields whose value the output matches (extra output fields ignored)."""
    if not reference:
        return 1.0
    hits = sum(k in output and _norm_value(output[k]) == _norm_value(v) for k, v in reference.items())
    return hits / len(reference)


def _references(answers: list[str]) -> list[dict]:
    refs = []
    for a in answers:
        obj = a if isinstance(a, dict) else extract_json_object(a)
        if isinstance(obj, dict):
            refs.append(obj)
    return refs


def _is_valid(obj: dict, schema: dict | None) -> bool:
    if schema is None:
        return True
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError:
        return False
    return True


def follows_format(item: Item, text: str) -> bool | None:
    """Whether `text` gives the format the request asked for, read off the request, never its answers:
    an item with a JSON schema (or the json scorer) asks for a JSON object that fits the schema.
    None: the item asks for no checkable format."""
    if item.schema is None and item.scorer != "json":
        return None
    obj = extract_json_object(text)
    return obj is not None and _is_valid(obj, item.schema)


def score_json(text: str, item: Item) -> dict[str, float]:
    """json_valid: an object was found and fits item.schema; json_fields: best field accuracy over references.

    Without a reference object, field accuracy falls back to validity (all that can be checked).
    """
    obj = extract_json_object(text)
    if obj is None:
        return {"json_valid": 0.0, "json_fields": 0.0}
    valid = float(_is_valid(obj, item.schema))
    refs = _references(item.answers)
    fields = max((json_field_accuracy(obj, r) for r in refs), default=valid)
    return {"json_valid": valid, "json_fields": fields}


SCORERS.register("exact")(Scorer(lambda t, it: {"exact": _best(exact_match, t, it.answers)},
                                 "exact", lambda s: s["exact"] == 1.0))
SCORERS.register("f1")(Scorer(lambda t, it: {"f1": _best(token_f1, t, it.answers)},
                              "f1", lambda s: s["f1"] >= 0.5))
SCORERS.register("contains")(Scorer(lambda t, it: {"contains": _best(contains, t, it.answers)},
                                    "contains", lambda s: s["contains"] == 1.0))
SCORERS.register("json")(Scorer(score_json, "json_fields",
                                lambda s: s["json_valid"] == 1.0 and s["json_fields"] == 1.0))


def score_output(item: Item, text: str) -> dict:
    """Score one output: {"scores": {exact, f1, contains[, json_valid, json_fields]}, "score", "correct"}.

    An item without reference answers (random, ShareGPT, a prompts file) is not scored: score and correct None."""
    if not item.answers:
        return {"scores": {}, "score": None, "correct": None}
    own = SCORERS.get(item.scorer, where=f"item {item.id}.scorer")
    scores: dict[str, float] = {}
    for name in dict.fromkeys((*TEXT_SCORERS, item.scorer)):
        scores.update(SCORERS.get(name).score(text, item))
    return {"scores": scores, "score": scores[own.key], "correct": bool(own.correct(scores))}
