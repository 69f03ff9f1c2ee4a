"""Context strategies against the context as retrieved, from one run of configs/compression.yaml.

Regime: the golden test split (claims only; defaults were chosen on the dev split with
configs/compression_dev.yaml): short lookups and clauses, multi-document items, long_noisy and the
held-out retrieved_single / retrieved_multi family (~50-1,900 tokens), greedy decoding, one model.
Every arm sees the same requests; the baseline arm audits its context but changes nothing.
For each arm it prints prompt tokens saved, TTFT and e2e latency change (the context steps run
when a request arrives, so their cost is inside both), quality change in points with a paired
95% bootstrap interval, gold-chunk recall, duplicate rates with the report's warning levels, and
why each arm's wrong answers failed. Then, per category, accuracy with a 95% bootstrap interval
(scipy.stats.bootstrap, percentile, seeded) and the paired change against the baseline; on
contexts over 300 tokens, context tokens saved and accuracy against gold_only; and issue 17's
goals: no category loses, long contexts -40% tokens within 2 points of gold-only, every step
that drops gold evidence flagged. `--thresholds` replays a run made with min_context_tokens: 0
(the dev sweep) at other thresholds: at or below one an item gets the baseline's answer.
The last stdout line is JSON.

    python scripts/bench_context.py results/compression-20250101T000000Z
    python scripts/bench_context.py --config configs/compression.yaml --limit 4     # run it first
    python scripts/bench_context.py results/compression-... --items                  # plus the per-item table
    python scripts/bench_context.py results/compression_dev-... --thresholds 0,150,300,600
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.context.audit import duplicate_warning          # noqa: E402
from testbed.metrics.stats import ratio_ci                   # noqa: E402
from testbed.report.context_audit import audit_warnings      # noqa: E402
from context_stats import (LONG_TOKENS, category_table, long_table, outcomes,  # noqa: E402
                             replay, service_ttft)

COMPRESSORS = {"extract", "prune", "llmlingua"}


def load_run(run_dir: Path) -> tuple[dict, dict, list[dict]]:
    """summary, config and records; a run stopped before its summary gets one rebuilt from its records."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines() if line.strip()]
    if not (run_dir / "summary.json").is_file():
        from context_stats import complete_arms, summary_from_records
        records = complete_arms(records, config["baseline"])
        return summary_from_records(records, config), config, records
    return json.loads((run_dir / "summary.json").read_text()), config, records


def step_names(config: dict, arm: str) -> list[str]:
    """The arm's step names: its default steps, then any category's own (context.by_category)."""
    ctx = (config["arms"][arm] or {}).get("context") or {}
    lists = [ctx.get("steps", [])] + list((ctx.get("by_category") or {}).values())
    return list(dict.fromkeys(s["name"] for steps in lists for s in steps))


def correct_by_request(records: list[dict], arm: str) -> dict[str, float]:
    return {r["request_id"]: float(bool(r.get("correct")) and r.get("status") == "ok")
            for r in records if r["arm"] == arm}


def failure_kind(rec: dict) -> str:
    """Why a request's answer was wrong, from its context audit (or "correct")."""
    if rec.get("correct") and rec.get("status") == "ok":
        return "correct"
    a = (rec.get("stats") or {}).get("ContextPipeline") or {}
    if a.get("gold_recall") == 0:
        return "gold_dropped"
    if a.get("answer_in_context") is False:
        return "answer_cut"
    return "model_wrong"


def failures(records: list[dict], arm: str) -> dict[str, int]:
    kinds = [failure_kind(r) for r in records if r["arm"] == arm]
    return {k: kinds.count(k) for k in ("gold_dropped", "answer_cut", "model_wrong")}


def item_table(records: list[dict], arms: list[str]) -> list[str]:
    """One line per item: per arm, ✓/✗ then the gold chunk's position (1-based, - when dropped) and chunks kept."""
    cell = {}
    for r in records:
        a = (r.get("stats") or {}).get("ContextPipeline") or {}
        pos = a.get("gold_position")
        mark = "✓" if failure_kind(r) == "correct" else "✗"
        cell[(r["item_id"], r["arm"])] = f"{mark} {'-' if pos is None else pos + 1}/{a.get('chunks_after', '?')}"
    items = list(dict.fromkeys(r["item_id"] for r in records))
    lines = [f"{'item':10} " + " ".join(f"{a[:12]:>12}" for a in arms) + "   (✓/✗ gold position / chunks kept)"]
    lines += [f"{i:10} " + " ".join(f"{cell.get((i, a), ''):>12}" for a in arms) for i in items]
    return lines


def change_pct(m: dict, base: dict, key: str) -> float | None:
    if m.get(key) is None or not base.get(key):
        return None
    return 100.0 * (m[key] / base[key] - 1.0)


def arm_row(arm: str, m: dict, base: dict, records: list[dict], baseline: str, steps: list[str]) -> dict:
    diff = ratio_ci(correct_by_request(records, arm), correct_by_request(records, baseline), kind="diff")
    pts = lambda v: None if v is None else round(100 * v, 1)   # noqa: E731
    return {"arm": arm, "steps": steps, "n": m.get("n_requests"),
            "prompt_tokens_saved_pct": None if change_pct(m, base, "prompt_tokens_mean") is None
            else round(-change_pct(m, base, "prompt_tokens_mean"), 1),
            "context_tokens_saved_pct": m.get("context_tokens_saved_pct"),
            "ttft_p50_change_pct": change_pct(m, base, "ttft_ms_p50"),
            "e2el_p50_change_pct": change_pct(m, base, "e2el_ms_p50"),
            "accuracy": m.get("quality_accuracy"),
            "accuracy_change_pts": pts(diff["estimate"]), "ci95_pts": [pts(diff["ci_low"]), pts(diff["ci_high"])],
            "gold_recall": m.get("gold_recall"), "answer_in_context_rate": m.get("answer_in_context_rate"),
            "duplicate_rate_before": m.get("duplicate_rate_before"), "duplicate_rate_after": m.get("duplicate_rate_after"),
            "injected_duplicates_removed_pct": m.get("injected_duplicates_removed_pct"),
            "context_seconds_mean": m.get("context_seconds_mean"),
            "step_recall": {k: v for k, v in m.items() if k.startswith("gold_recall_step")},
            "failures": failures(records, arm)}


def goals(rows: list[dict], summary: dict, out: dict, cats: dict, longs: dict) -> dict:
    """Issue 17's goals per shipped context arm (every arm but the baseline and the gold_only bound)."""
    base, verdict = summary["baseline"], {}
    flagged = "\n".join(audit_warnings(summary))
    for r in rows:
        arm, steps = r["arm"], set(r["steps"])
        if arm == base or steps == {"gold_only"}:
            continue
        verdict[f"no_category_loses[{arm}]"] = all(c["delta"][2] >= 0 for c in cats[arm].values())
        if steps & COMPRESSORS and "gold_only" in longs and longs[arm]["n"]:
            lg, gold = longs[arm], longs["gold_only"]
            verdict[f"long_compression[{arm}]"] = bool((lg["tokens_saved_pct"] or 0) >= 40
                                                      and lg["acc"][0] >= gold["acc"][0] - 2)
        if any(v["lost"] for v in out[arm].values()):
            verdict[f"drop_flagged[{arm}]"] = f"arm {arm}," in flagged and "gold recall fell" in flagged
    return verdict


def fmt(v, spec="{:+.0f}%") -> str:
    return "-" if v is None else spec.format(v)


def print_card(summary: dict, rows: list[dict], verdict: dict) -> None:
    print(f"context bench: run {summary['name']}, baseline {summary['baseline']}, {rows[0]['n']} requests per arm")
    print(f"{'arm':16} {'prompt saved':>12} {'ctx saved':>9} {'TTFT p50':>9} {'e2e p50':>8} {'acc':>5} "
          f"{'Δacc pts [95% CI]':>22} {'recall':>6} {'dup before→after':>17}")
    for r in rows:
        ci = "" if r["ci95_pts"][0] is None else f" [{r['ci95_pts'][0]:+.0f}, {r['ci95_pts'][1]:+.0f}]"
        dup = f"{fmt(r['duplicate_rate_before'], '{:.2f}')}→{fmt(r['duplicate_rate_after'], '{:.2f}')}"
        print(f"{r['arm']:16} {fmt(r['prompt_tokens_saved_pct'], '{:.0f}%'):>12} {fmt(r['context_tokens_saved_pct'], '{:.0f}%'):>9} "
              f"{fmt(r['ttft_p50_change_pct']):>9} {fmt(r['e2el_p50_change_pct']):>8} {fmt(r['accuracy'], '{:.2f}'):>5} "
              f"{fmt(r['accuracy_change_pts'], '{:+.1f}') + ci:>22} {fmt(r['gold_recall'], '{:.2f}'):>6} {dup:>17}")
    w = duplicate_warning(rows[0]["duplicate_rate_before"])
    if w:
        print(f"  warning [context as retrieved]: {w}")
    for r in rows:
        w = duplicate_warning(r["duplicate_rate_after"])
        if w:
            print(f"  warning [{r['arm']}, what reached the model]: {w}")
    for r in rows:
        f = r["failures"]
        print(f"  wrong answers [{r['arm']}]: {f['gold_dropped']} gold chunk dropped, {f['answer_cut']} answer cut "
              f"by compression, {f['model_wrong']} answer in context but missed")
    for name, ok in verdict.items():
        print(f"  goal {name}: {'met' if ok else 'NOT met'}")


def ci(t: tuple[float, float, float], sign: str = "") -> str:
    return f"{t[0]:{sign}.0f} [{t[1]:{sign}.0f}, {t[2]:{sign}.0f}]"


def print_tables(cats: dict, longs: dict, baseline: str) -> None:
    names = sorted({c for arm in cats.values() for c in arm})
    print(f"\naccuracy % [95% CI] per category, and the change vs {baseline} in points [95% CI, paired]:")
    print(f"{'arm':16} " + " ".join(f"{c[:22]:>34}" for c in names))
    for arm, row in cats.items():
        cells = [f"{ci(row[c]['acc'])} {ci(row[c]['delta'], '+')}" if c in row else "" for c in names]
        print(f"{arm:16} " + " ".join(f"{x:>34}" for x in cells))
    print(f"  n per category: " + ", ".join(f"{c} {next(iter(cats.values()))[c]['n']}" for c in names))
    if longs.get("gold_only", {}).get("n"):
        print(f"\ncontexts over {LONG_TOKENS} tokens ({longs['gold_only']['n']} items): context tokens saved, "
              "accuracy %, change vs gold_only in points [95% CI, paired]")
        for arm, lg in longs.items():
            print(f"  {arm:16} {fmt(lg['tokens_saved_pct'], '{:.0f}%'):>5}  {ci(lg['acc']):>14}  {ci(lg['delta'], '+')}")


def print_replay(rep: dict[int, dict]) -> None:
    print("\nreplay of the ratio-only arms at min_context_tokens thresholds (accuracy % overall and per "
          "category, ctx tokens saved; >300 tokens: saved, accuracy, change vs gold_only [95% CI]):")
    for t, arms in rep.items():
        for arm, res in arms.items():
            per = ", ".join(f"{c} {res[c]['acc'][0]:.0f}" for c in res if c not in ("all", "over_300_vs_gold_only"))
            print(f"  T={t:<5} {arm:16} all {res['all']['acc'][0]:.0f} (saved {fmt(res['all']['tokens_saved_pct'], '{:.0f}%')})"
                  f"  {per}")
            lg = res.get("over_300_vs_gold_only")
            if lg:
                print(f"  {'':7} {'':16} >300: saved {fmt(lg['tokens_saved_pct'], '{:.0f}%')}, acc {lg['acc'][0]:.0f}, "
                      f"vs gold_only {ci(lg['delta'], '+')}")


def run_config(path: str, limit: int | None, sets: list[str]) -> Path:
    from testbed.config import load_config
    from testbed.plugins import load_plugins
    from testbed.runner import Experiment
    load_plugins()      # engines and sections registered before the config is validated
    exp = Experiment(load_config(path, sets), limit=limit, progress=False)
    return exp.run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", nargs="?", help="a results/<name>-<UTC> directory")
    ap.add_argument("--config", help="run this config first, then report on it")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--items", action="store_true", help="also print the per-item table")
    ap.add_argument("--thresholds", help="replay at these min_context_tokens, e.g. 0,150,300,600")
    args = ap.parse_args()
    if not args.run_dir and not args.config:
        ap.error("give a run directory or --config")
    run_dir = run_config(args.config, args.limit, args.set) if args.config else Path(args.run_dir)
    summary, config, records = load_run(run_dir)
    base = summary["arms"][summary["baseline"]]
    rows = [arm_row(a, m, base, records, summary["baseline"], step_names(config, a)) for a, m in summary["arms"].items()]
    out = outcomes(records)
    cats = category_table(out, summary["baseline"])
    longs = long_table(out, "gold_only") if "gold_only" in out else {}
    verdict = goals(rows, summary, out, cats, longs)
    print_card(summary, rows, verdict)
    for w in (w for w in audit_warnings(summary) if "fell from" in w):
        print(f"  warning [{w.split(':', 1)[0]}]: {w.split(':', 1)[1].strip()}")
    print_tables(cats, longs, summary["baseline"])
    alone = service_ttft(records)
    print("\nTTFT p50 a request would see alone (its context steps + prefill; the queue ahead taken out), ms: "
          + ", ".join(f"{a} {v['all']:.0f} (>300 tokens: {fmt(v['over_300'], '{:.0f}')})" for a, v in alone.items()))
    ratio_arms = [r["arm"] for r in rows if r["steps"] and set(r["steps"]) <= COMPRESSORS]
    rep = {int(t): replay(out, summary["baseline"], int(t), ratio_arms) for t in args.thresholds.split(",")} \
        if args.thresholds else {}
    if rep:
        print_replay(rep)
    if args.items:
        print("\n".join(item_table(records, list(summary["arms"]))))
    print(json.dumps({"run_dir": str(run_dir), "baseline": summary["baseline"], "arms": rows, "goals": verdict,
                      "by_category": cats, "over_300_tokens": longs, "replay": rep, "ttft_alone_ms_p50": alone},
                     default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
