"""Context strategies against the context as retrieved, from one run of configs/compression.yaml.

Regime: the golden set's long_noisy items (~1,450 retrieved tokens each: exact and near
duplicates, confusable distractors, the gold chunk in the middle), greedy decoding, one model.
Every arm sees the same requests; the baseline arm audits its context but changes nothing.
For each arm it prints prompt tokens saved, TTFT and e2e latency change (the context steps run
when a request arrives, so their cost is inside both), quality change in points with a paired
95% bootstrap interval, gold-chunk recall, duplicate rates with the report's warning levels,
the issue's goals, and why each arm's wrong answers failed: the gold chunk dropped, its answer
text cut by compression, or the answer in front of the model and still missed (`--items` adds the
per-item table: correct, gold position, chunks kept, per arm). The last stdout line is JSON.

    python scripts/bench_context.py results/compression-20250101T000000Z
    python scripts/bench_context.py --config configs/compression.yaml --limit 4     # run it first
    python scripts/bench_context.py results/compression-... --items                  # plus the per-item table
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


def load_run(run_dir: Path) -> tuple[dict, dict, list[dict]]:
    summary = json.loads((run_dir / "summary.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines() if line.strip()]
    return summary, config, records


def step_names(config: dict, arm: str) -> list[str]:
    ctx = (config["arms"][arm] or {}).get("context") or {}
    return [s["name"] for s in ctx.get("steps", [])]


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


def goals(rows: list[dict], base: dict) -> dict:
    """The issue's three goals, judged on the arms whose steps match each goal."""
    gold = next((r for r in rows if r["steps"] == ["gold_only"]), None)
    out = {}
    for r in rows:
        s = set(r["steps"])
        if "dedup" in s:
            lost = any(v < (r["step_recall"].get("gold_recall_before") or 1.0) - 1e-9
                       for k, v in r["step_recall"].items() if k.endswith("_dedup"))
            out[f"dedup[{r['arm']}]"] = bool((r["injected_duplicates_removed_pct"] or 0) >= 95 and not lost)
        if {"dedup", "rerank"} <= s and not s & {"extract", "prune"}:
            out[f"dedup_rerank[{r['arm']}]"] = bool((r["context_tokens_saved_pct"] or 0) >= 30
                                                    and (r["accuracy"] or 0) > (base.get("quality_accuracy") or 0))
        if s & {"extract", "prune"} and gold:
            out[f"compression[{r['arm']}]"] = bool((r["context_tokens_saved_pct"] or 0) >= 40
                                                   and (r["accuracy"] or 0) >= (gold["accuracy"] or 0) - 0.02)
    return out


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


def run_config(path: str, limit: int | None, sets: list[str]) -> Path:
    from testbed.config import load_config
    from testbed.runner import Experiment
    exp = Experiment(load_config(path, sets), limit=limit, progress=False)
    return exp.run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", nargs="?", help="a results/<name>-<UTC> directory")
    ap.add_argument("--config", help="run this config first, then report on it")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--items", action="store_true", help="also print the per-item table")
    args = ap.parse_args()
    if not args.run_dir and not args.config:
        ap.error("give a run directory or --config")
    run_dir = run_config(args.config, args.limit, args.set) if args.config else Path(args.run_dir)
    summary, config, records = load_run(run_dir)
    base = summary["arms"][summary["baseline"]]
    rows = [arm_row(a, m, base, records, summary["baseline"], step_names(config, a)) for a, m in summary["arms"].items()]
    verdict = goals(rows, base)
    print_card(summary, rows, verdict)
    if args.items:
        print("\n".join(item_table(records, list(summary["arms"]))))
    print(json.dumps({"run_dir": str(run_dir), "baseline": summary["baseline"], "arms": rows, "goals": verdict},
                     default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
