"""The held-out noisy-retrieval family: `retrieved_single` and `retrieved_multi` (test split only).

Independently written from long_noisy (records.py: six other domains, two phrasings per field) and
seeded on its own, so adding it changes no other item:

- `retrieved_single`: one retrieved record of ~50-130 tokens; the question asks one field, the
  other fields and boilerplate are the noise. Tests that compression leaves a short context alone.
- `retrieved_multi`: 6-40 chunks, ~400-1,900 tokens: the record split in two chunks (the gold one
  holds the asked field), the same field in other entities' records (confusable), the same record's
  superseded version with another value, exact copies and reworded copies (the other phrasing) of
  distractors, and records from other domains as filler. The gold chunk's rank is drawn at random.

Every item's meta says its split ("test"), shape, and the labels the context audit reads
(duplicate_of, near_duplicate_of, distractor_ids), plus context_tokens_hint (characters / 4.2).
"""
from golden.common import approx_tokens, chunk, item
from golden.records import DOMAINS, Domain

N_SINGLE, N_MULTI = 18, 24
SINGLE_TOKENS, MULTI_TOKENS = (60, 300), (300, 2000)


def record(d: Domain, e: str, values: dict[str, str], rng, keys=None, title=None) -> str:
    """A record of entity `e`: a title and one sentence per field in `keys` (phrasing drawn at random)."""
    keys = keys if keys is not None else [f.key for f in d.fields]
    lines = [(title or rng.choice(d.title)).format(e=e)]
    lines += [rng.choice(f.phrasings).format(v=values[f.key]) for f in d.fields if f.key in keys]
    return " ".join(lines)


def reword(d: Domain, text: str, values: dict[str, str]) -> str:
    """The same record in the other phrasing of every field it states (same facts, other words)."""
    for f in d.fields:
        a, b = (p.format(v=values[f.key]) for p in f.phrasings)
        text = text.replace(a, "\0").replace(b, a).replace("\0", b)
    return text


def draw_values(d: Domain, rng, avoid: dict[str, str] | None = None) -> dict[str, str]:
    return {f.key: rng.choice([v for v in f.values if not avoid or v != avoid[f.key]]) for f in d.fields}


def norm(s: str) -> str:
    import re
    return " " + " ".join(re.findall(r"\w+", s.lower())) + " "


def states(text: str, answer: str) -> bool:
    return norm(answer) in norm(text)


def single(i: int, d: Domain, rng) -> dict:
    e = rng.choice(d.entities)
    values = draw_values(d, rng)
    f = rng.choice(d.fields)
    target = rng.randint(*SINGLE_TOKENS)
    keys = [f.key] + rng.sample([g.key for g in d.fields if g is not f], rng.randint(0, len(d.fields) - 1))
    text = record(d, e, values, rng, keys)
    extra = list(d.boilerplate)
    rng.shuffle(extra)
    while approx_tokens(text) < target and extra:
        text += " " + extra.pop()
    cid = f"r{rng.randint(100, 999)}"
    return item(f"retr-s{i:02d}", "retrieved_single", f.question.format(e=e), [values[f.key]], "contains",
                [chunk(cid, text, f"{d.name}-{i:02d}")], [cid],
                meta={"split": "test", "shape": "single", "domain": d.name, "context_tokens_hint": approx_tokens(text)})


def multi(i: int, d: Domain, rng, target: int) -> dict:
    e, f = rng.choice(d.entities), rng.choice(d.fields)
    values = draw_values(d, rng)
    answer = values[f.key]
    rest = [g.key for g in d.fields if g is not f]
    rng.shuffle(rest)
    cut = len(rest) // 2
    title = rng.choice(d.title)
    rows = [{"text": record(d, e, values, rng, [f.key] + rest[:cut], title), "gold": True},
            {"text": record(d, e, values, rng, rest[cut:], title)}]
    old = draw_values(d, rng, avoid=values)
    rows.append({"text": record(d, e, old, rng, [f.key], d.superseded), "distractor": True, "values": old})
    for other in rng.sample([x for x in d.entities if x != e], rng.randint(2, 5)):
        v = draw_values(d, rng, avoid=values)
        rows.append({"text": record(d, other, v, rng, None), "distractor": True, "values": v})
    rows += copies(d, rng, [r for r in rows if r.get("distractor")])
    fill(rows, target, d, rng)
    rows = [r for r in rows if r.get("gold") or not states(r["text"], answer)]
    gold = rows[0]
    rest_rows = rows[1:]
    rng.shuffle(rest_rows)
    rest_rows.insert(rng.randint(0, len(rest_rows)), gold)
    return assemble(f"retr-m{i:02d}", f.question.format(e=e), answer, rest_rows, d)


def copies(d: Domain, rng, distractors: list[dict]) -> list[dict]:
    """One exact copy and one reworded copy of distractors: the duplicates dedup must find."""
    a, b = rng.sample(distractors, 2)
    return [{"text": a["text"], "dup_of": a, "distractor": True},
            {"text": reword(d, b["text"], b["values"]), "near_of": b, "distractor": True}]


def fill(rows: list[dict], target: int, d: Domain, rng) -> None:
    """Records from the other domains until the context reaches about `target` tokens."""
    others = [x for x in DOMAINS if x is not d]
    while sum(approx_tokens(r["text"]) for r in rows) < target:
        o = rng.choice(others)
        rows.append({"text": record(o, rng.choice(o.entities), draw_values(o, rng), rng)})


def assemble(item_id: str, question: str, answer: str, rows: list[dict], d: Domain) -> dict:
    for n, r in enumerate(rows, 1):
        r["id"] = f"k{n:02d}"
    by_obj = {id(r): r["id"] for r in rows}
    meta = {"split": "test", "shape": "multi", "domain": d.name,
            "duplicate_of": {r["id"]: by_obj[id(r["dup_of"])] for r in rows if id(r.get("dup_of")) in by_obj},
            "near_duplicate_of": {r["id"]: by_obj[id(r["near_of"])] for r in rows if id(r.get("near_of")) in by_obj},
            "distractor_ids": [r["id"] for r in rows if r.get("distractor")],
            "context_tokens_hint": sum(approx_tokens(r["text"]) for r in rows)}
    gold = [r["id"] for r in rows if r.get("gold")]
    return item(item_id, "retrieved_multi", question, [answer], "contains",
                [chunk(r["id"], r["text"], "retrieved") for r in rows], gold, meta=meta)


def build(rng) -> dict[str, list[dict]]:
    """Both categories; the multi-chunk targets spread evenly over 300-2,000 tokens."""
    singles = [single(i + 1, DOMAINS[i % len(DOMAINS)], rng) for i in range(N_SINGLE)]
    lo, hi = MULTI_TOKENS
    targets = [lo + round(k * (hi - lo - 400) / (N_MULTI - 1)) for k in range(N_MULTI)]   # real tokens run ~10% over the estimate
    rng.shuffle(targets)
    multis = [multi(i + 1, DOMAINS[i % len(DOMAINS)], rng, t) for i, t in enumerate(targets)]
    return {"retrieved_single": singles, "retrieved_multi": multis}
