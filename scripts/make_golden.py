"""Regenerate the shipped golden sets: testbed/workloads/golden/<category>.jsonl, one Item per line.

Deterministic (one seeded random.Random, no network, no model): running it twice gives
byte-identical files. The items are written here, in scripts/golden/*.py; see docs/datasets.md.
Every item's meta.split says whether it may be used to choose defaults (dev) or only to report
results (test); see `assign_splits`.

    python scripts/make_golden.py                  # writes testbed/workloads/golden/
    python scripts/make_golden.py --out /tmp/gold  # somewhere else (the determinism test does this)
    python scripts/make_tiny_tokenizer.py          # then retrain the tiny test tokenizer on the new text
"""
import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from golden import contracts, grounded, json_docs, lookup, multidoc, noisy, retrieved  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "testbed" / "workloads" / "golden"
SEED = 20240601
# the clean items whose facts are buried again in long_noisy (6 lookups, 6 clauses)
NOISY_FROM = ["lookup-01", "lookup-02", "lookup-04", "lookup-05", "lookup-08", "lookup-10",
              "clause-01", "clause-02", "clause-04", "clause-05", "clause-08", "clause-10"]


SECOND_BATCH = {"lookup": lookup, "clause_extraction": contracts, "json_extraction": json_docs,
                "multi_doc": multidoc, "grounded_output": grounded}


def build_all(seed: int = SEED) -> dict[str, list[dict]]:
    """Every golden category -> its items, in id order."""
    rng = random.Random(seed)
    facts = {f.id: f for f in lookup.FACTS + contracts.clause_facts()}
    pool = [f.gold_text for f in facts.values()]
    sets = {
        "lookup": lookup.build(rng),
        "clause_extraction": contracts.build(rng),
        "json_extraction": json_docs.build(rng),
        "multi_doc": multidoc.build(rng),
        "long_noisy": noisy.build([facts[k] for k in NOISY_FROM], pool, rng),
        "grounded_output": grounded.build(rng),
    }
    # the second batch (10 more items in each short category): each from its own seeded rng and outside
    # the long_noisy pool, so the first batch and long_noisy stay byte-identical
    for category, module in SECOND_BATCH.items():
        sets[category] += module.build_more(random.Random(f"{seed}-{category}"))
    assign_splits(sets, random.Random(f"{seed}-split"))
    # the held-out family (test split only), from its own rng: nothing above changes with it
    sets.update(retrieved.build(random.Random(f"{seed}-retrieved")))
    return sets


def assign_splits(sets: dict[str, list[dict]], rng: random.Random) -> None:
    """meta.split = dev | test, half and half in each category (dev gets the odd one), drawn by `rng`.

    A long_noisy item shares its clean twin's split (same question, same gold chunk), so no fact
    is tuned on in one split and scored in the other; the twins are drawn first, balanced within
    lookup and within clause_extraction, so long_noisy splits 6 / 6.
    """
    split: dict[str, str] = {}
    for group in (NOISY_FROM[:6], NOISY_FROM[6:]):
        order = rng.sample(group, len(group))
        split |= {i: "dev" if n % 2 == 0 else "test" for n, i in enumerate(order)}
    for category, items in sets.items():
        if category == "long_noisy":
            continue
        rest = [it["id"] for it in items if it["id"] not in split]
        rng.shuffle(rest)
        dev_left = (len(items) + 1) // 2 - sum(split.get(it["id"]) == "dev" for it in items)
        split |= {i: "dev" if n < dev_left else "test" for n, i in enumerate(rest)}
    for category, items in sets.items():
        for it in items:
            it["meta"]["split"] = split[it["meta"]["clean_item_id"] if category == "long_noisy" else it["id"]]


def write(sets: dict[str, list[dict]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for category, items in sets.items():
        lines = [json.dumps(it, ensure_ascii=False) for it in items]
        (out / f"{category}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{category}: {len(items)} items -> {out / f'{category}.jsonl'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    write(build_all(args.seed), args.out)


if __name__ == "__main__":
    main()
