"""`long_noisy`: a clean lookup/clause fact buried in ~1,200-1,800 tokens of noise.

The noise is what breaks retrieval-augmented answers in production: exact duplicates (same text,
new id), near-duplicates (a few words changed), and confusable distractors (the gold chunk's own
template rendered for other entities, look-alike names and the same entity's superseded value).
The gold chunk sits in the middle of the ranking. meta.clean_item_id names the clean item with
the same question and gold chunk, so a run can show the failure is the context, not the model.
"""
import re

from golden.common import OTHER_COMPANIES, Fact, approx_tokens, chunk, fact_item

SUBS = [("company", "firm"), ("agreement", "contract"), ("currently", "now"), ("annual", "yearly"),
        ("written notice", "notice in writing"), ("also", "additionally"), ("each", "every"),
        ("about", "around"), ("more than", "over"), ("which", "that"), ("oversees", "leads"),
        ("mainly", "chiefly"), ("offices", "branches"), ("makes", "produces"), ("largest", "biggest"),
        ("people", "staff"), ("sells", "retails"), ("uses", "carries"), ("single", "full"),
        ("develops", "builds"), ("shares", "stock"), ("party", "side"), ("total", "overall"),
        ("deliver", "ship"), ("products", "goods"), ("obligations", "duties"), ("resolved", "settled"),
        ("landlord", "owner"), ("tenant", "lessee"), ("recommended", "suggested"), ("runs", "operates"),
        ("will", "shall"), ("Its", "The group's"), ("until", "up to"), ("small", "modest")]
MIN_TOKENS, MAX_TOKENS = 1200, 1800


def near_duplicate(text: str, keep: str, n: int = 3) -> str:
    """`text` with up to n words swapped for synonyms, never touching `keep` (the value it states)."""
    out, done = text, 0
    for a, b in SUBS:
        new = re.sub(rf"\b{re.escape(a)}\b", b, out, count=1)
        if new != out and keep in new:
            out, done = new, done + 1
        if done == n:
            break
    assert done, f"no substitution applies to {text!r}"
    return out


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _distractors(f: Fact, rng) -> list[dict]:
    wrong = [a for a in f.alts if a != f.value]
    v = rng.choice(wrong)
    out = [{"text": f.render(f.entity, v, old=True), "source": f.source + "-archive", "value": v}]
    others = f.others or OTHER_COMPANIES
    for name in list(f.similar) + rng.sample(others, min(5, len(others))):
        v = rng.choice(wrong)
        out.append({"text": f.render(name, v), "source": slug(name), "value": v})
    return out


def _fillers(f: Fact, pool: list[str]) -> list[str]:
    """Harmless chunks: the fact's own background, then other facts' gold chunks, none stating the answer."""
    answers = [a.lower() for a in f.answers]
    return [t for t in list(f.background) + pool
            if t != f.gold_text and not any(a in t.lower() for a in answers)]


def build_one(f: Fact, item_id: str, pool: list[str], rng) -> dict:
    """One long_noisy item for fact `f`; `pool` holds other gold chunks usable as filler."""
    conf = _distractors(f, rng)
    near = [{"text": near_duplicate(d["text"], d["value"]), "source": d["source"], "near_of": d}
            for d in rng.sample(conf, 2)]
    dups = [{"text": d["text"], "source": d["source"], "dup_of": d} for d in rng.sample(conf, 2)]
    for d in conf + near:
        d["distractor"] = True
    for d in dups:
        d["distractor"] = True
    others = conf + near + dups
    budget = rng.randint(1350, 1600)
    fillers = _fillers(f, pool)
    rng.shuffle(fillers)
    used = approx_tokens(f.gold_text) + sum(approx_tokens(d["text"]) for d in others)
    for t in fillers:
        if used >= budget:
            break
        if used + approx_tokens(t) <= MAX_TOKENS - 50:
            others.append({"text": t, "source": "background"})
            used += approx_tokens(t)
    rng.shuffle(others)
    gold = {"text": f.gold_text, "source": f.source}
    ranked = others[:]
    ranked.insert(len(ranked) // 2 + rng.randint(-1, 1), gold)
    return _assemble(f, item_id, ranked, gold)


def _assemble(f: Fact, item_id: str, ranked: list[dict], gold: dict) -> dict:
    for i, r in enumerate(ranked):
        r["id"] = f"c{i + 1:02d}"
    chunks = [chunk(r["id"], r["text"], r["source"]) for r in ranked]
    meta = {
        "clean_item_id": f.id,
        "duplicate_of": {r["id"]: r["dup_of"]["id"] for r in ranked if "dup_of" in r},
        "near_duplicate_of": {r["id"]: r["near_of"]["id"] for r in ranked if "near_of" in r},
        "distractor_ids": [r["id"] for r in ranked if r.get("distractor")],
        "gold_only_tokens_hint": approx_tokens(gold["text"]),
        "context_tokens_hint": sum(approx_tokens(r["text"]) for r in ranked),
    }
    assert MIN_TOKENS <= meta["context_tokens_hint"] <= MAX_TOKENS, (item_id, meta["context_tokens_hint"])
    return fact_item(f, "long_noisy", chunks, gold["id"], meta) | {"id": item_id}


def build(facts: list[Fact], pool: list[str], rng) -> list[dict]:
    return [build_one(f, f"noisy-{i + 1:02d}", pool, rng) for i, f in enumerate(facts)]
