"""bench_context.py's arithmetic: per-item outcomes, bootstrap intervals, per-category and long-context
comparisons, threshold replay, and a summary rebuilt from requests.jsonl for a run stopped before its
summary.json.

    out = outcomes(records)                             # arm -> item -> {category, correct, before, after, lost}
    cats = category_table(out, "as_retrieved")          # arm -> category -> accuracy and paired change, with CIs
    summary = summary_from_records(records, config)    # {"name", "baseline", "incomplete": True, "arms", "by_category"}

The rebuilt summary serves a run directory without summary.json (a run killed by SIGTERM, or a
background run that ignores Ctrl-C). Wall-time figures (throughput, cost) need the arm's wall time,
which only the runner knows, so they are absent; per-request figures (latency percentiles, quality,
the context audit) are the same as the runner's.
"""
import numpy as np

from testbed.context.pipeline import ContextPipeline
from testbed.metrics.summary import by_category, summarize_arm


def complete_arms(records: list[dict], baseline: str) -> list[dict]:
    """The records of arms that answered every request the baseline did; the arm stopped mid-way is named."""
    n = {a: sum(r["arm"] == a for r in records) for a in dict.fromkeys(r["arm"] for r in records)}
    cut = [a for a, k in n.items() if k < n.get(baseline, 0)]
    if cut:
        print("left out (stopped before answering every request): "
              + ", ".join(f"{a} ({n[a]}/{n[baseline]})" for a in cut))
    return [r for r in records if r["arm"] not in cut]


def summary_from_records(records: list[dict], config: dict) -> dict:
    arms, cats = {}, {}
    for arm in dict.fromkeys(r["arm"] for r in records):
        recs = [r for r in records if r["arm"] == arm]
        row = summarize_arm(recs, wall_s=0.0)
        arms[arm] = {k: v for k, v in row.items() if "throughput" not in k} | ContextPipeline.aggregate(recs)
        cats[arm] = {c: m | ContextPipeline.aggregate([r for r in recs if (r.get("category") or "uncategorised") == c])
                     for c, m in by_category(recs).items()}
    return {"name": config.get("name"), "baseline": config["baseline"], "incomplete": True, "arms": arms,
            "by_category": cats}


LONG_TOKENS = 300               # issue 17's "contexts over 300 tokens"


def outcomes(records: list[dict]) -> dict[str, dict[str, dict]]:
    """arm -> item -> {category, correct, before, after (context tokens), lost (gold recall fell)}."""
    out: dict[str, dict[str, dict]] = {}
    for r in records:
        a = (r.get("stats") or {}).get("ContextPipeline") or {}
        lost = (a.get("gold_recall") is not None and a.get("gold_recall_before") is not None
                and a["gold_recall"] < a["gold_recall_before"] - 1e-9)
        out.setdefault(r["arm"], {})[r["item_id"]] = {
            "category": r.get("category") or "uncategorised", "correct": bool(r.get("correct")) and r.get("status") == "ok",
            "before": a.get("tokens_before", 0), "after": a.get("tokens_after", 0), "lost": lost}
    return out


def boot(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval (scipy, seeded) of per-item values, in points."""
    from scipy.stats import bootstrap
    m = float(x.mean()) if len(x) else float("nan")
    if len(x) < 2 or np.all(x == x[0]):
        return 100 * m, 100 * m, 100 * m
    ci = bootstrap((x,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)).confidence_interval
    return 100 * m, 100 * float(ci.low), 100 * float(ci.high)


def compare(arm: dict, ref: dict, ids: list[str]) -> dict:
    """Accuracy of `arm` on `ids` and its paired change against `ref`, each with its interval (points)."""
    a = np.array([arm[i]["correct"] for i in ids], dtype=float)
    b = np.array([ref[i]["correct"] for i in ids], dtype=float)
    before, after = sum(arm[i]["before"] for i in ids), sum(arm[i]["after"] for i in ids)
    return {"n": len(ids), "acc": boot(a), "delta": boot(a - b),
            "tokens_saved_pct": round(100 * (1 - after / before), 1) if before else None}


def category_table(out: dict, baseline: str) -> dict[str, dict[str, dict]]:
    """arm -> category -> compare() against the baseline, on the items both arms answered."""
    base, table = out[baseline], {}
    for arm, items in out.items():
        for cat in sorted({v["category"] for v in items.values()}):
            ids = sorted(i for i, v in items.items() if v["category"] == cat and i in base)
            table.setdefault(arm, {})[cat] = compare(items, base, ids)
    return table


def long_table(out: dict, ref: str) -> dict[str, dict]:
    """arm -> compare() against `ref` (gold_only) on the items whose context as retrieved is over 300 tokens."""
    return {arm: compare(items, out[ref], sorted(i for i, v in items.items() if v["before"] > LONG_TOKENS
                                                 and i in out[ref])) for arm, items in out.items()}


def replay(out: dict, baseline: str, threshold: int, arms: list[str]) -> dict[str, dict]:
    """`arms` (ratio steps only, run with a lower min_context_tokens) as if their ratio applied only above
    `threshold` tokens: at or below it an item gets the baseline's answer, which is what passing the
    context whole gives under greedy decoding. Per arm: all items, each category, and >300 tokens vs gold_only."""
    res = {}
    for arm in arms:
        mix = {i: (out[baseline][i] if v["before"] <= threshold else v) for i, v in out[arm].items() if i in out[baseline]}
        cats = sorted({v["category"] for v in mix.values()})
        res[arm] = {"all": compare(mix, out[baseline], sorted(mix)),
                    **{c: compare(mix, out[baseline], sorted(i for i, v in mix.items() if v["category"] == c))
                       for c in cats}}
        if "gold_only" in out:
            res[arm]["over_300_vs_gold_only"] = compare(mix, out["gold_only"], sorted(
                i for i, v in mix.items() if v["before"] > LONG_TOKENS and i in out["gold_only"]))
    return res


def service_ttft(records: list[dict]) -> dict[str, dict[str, float]]:
    """arm -> p50 of the TTFT a request would see alone, in ms: its context steps' seconds plus the time from
    the engine taking it up (after its arrival and context steps, or at the previous request's last
    token) to its first token.

    Offline arrival admits every request at once (each one's context steps run then, before any
    generation), so the recorded TTFT holds the queue ahead of it; at batch 1 (the hf engine's default)
    requests run one after another, so this takes the queue out. Under concurrency 1 it is the recorded TTFT.
    `over_300`: the same over contexts of more than 300 tokens."""
    out: dict[str, dict[str, float]] = {}
    for arm in dict.fromkeys(r["arm"] for r in records):
        recs = sorted((r for r in records if r["arm"] == arm and r.get("first_token_s") is not None),
                      key=lambda r: r["first_token_s"])
        prev, rows = 0.0, []
        for r in recs:
            a = (r.get("stats") or {}).get("ContextPipeline") or {}
            ctx = sum(st.get("seconds", 0.0) for st in a.get("steps", []))
            # taken up once its context steps ran (right after arrival) and the previous request finished
            start = max(r["arrival_s"] + ctx, prev)
            rows.append((a.get("tokens_before", 0), 1000 * (r["first_token_s"] - start + ctx)))
            prev = r.get("finish_s") or r["first_token_s"]
        long = [t for n, t in rows if n > LONG_TOKENS]
        out[arm] = {"all": float(np.median([t for _, t in rows])) if rows else None,
                    "over_300": float(np.median(long)) if long else None}
    return out
