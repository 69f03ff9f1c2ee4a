"""scripts/bench_context.py reads one run of configs/compression.yaml and ends with a JSON line."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.config import load_config
from testbed.runner import Experiment
from test_e2e_configs import without_missing_extras

ROOT = Path(__file__).resolve().parents[1]


def test_bench_reports_every_arm_and_the_goals(tmp_path):
    cfg = load_config(ROOT / "configs" / "compression.yaml", device="cpu",
                      overrides=["model.id=random:tiny-llama", "workload.max_new_tokens=4", "workload.warmup=0",
                                 "workload.categories=[long_noisy, retrieved_single]"])
    cfg = without_missing_extras(cfg)       # the llmlingua arm needs its extra
    run_dir = Experiment(cfg, limit=2, progress=False).run(tmp_path)
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_context.py"), str(run_dir)],
                         capture_output=True, text=True, check=True).stdout
    last = json.loads(out.strip().splitlines()[-1])
    rows = {r["arm"]: r for r in last["arms"]}
    assert set(rows) == set(cfg.arms)
    assert rows["gold_only"]["gold_recall"] == 1.0 and rows["gold_only"]["context_tokens_saved_pct"] > 80
    assert rows["as_retrieved"]["context_tokens_saved_pct"] == 0.0 and rows["as_retrieved"]["duplicate_rate_before"] > 0.1
    assert rows["dedup_rerank"]["duplicate_rate_after"] == 0.0
    assert rows["dedup_rerank"]["injected_duplicates_removed_pct"] == 100.0
    assert "no_category_loses[extractive]" in last["goals"] and "long_compression[extractive]" in last["goals"]
    assert "no_category_loses[gold_only]" not in last["goals"] and "no_category_loses[as_retrieved]" not in last["goals"]
    cats = last["by_category"]["extractive"]
    assert set(cats) == {r["category"] for r in map(json.loads, (run_dir / "requests.jsonl").read_text().splitlines())}
    assert all(c["acc"][1] <= c["acc"][0] <= c["acc"][2] for c in cats.values())
    assert last["over_300_tokens"]["gold_only"]["n"] >= 1 and last["over_300_tokens"]["gold_only"]["tokens_saved_pct"] > 80
    assert "warning [context as retrieved]" in out and "warning [dedup_rerank" not in out
    assert sum(rows["gold_only"]["failures"].values()) + 2 * (rows["gold_only"]["accuracy"] or 0) == 2
    (run_dir / "summary.json").unlink()            # a run killed before its summary: rebuilt from requests.jsonl
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_context.py"), str(run_dir)],
                           capture_output=True, text=True, check=True).stdout
    redo = {r["arm"]: r for r in json.loads(again.strip().splitlines()[-1])["arms"]}
    assert {a: (r["accuracy"], r["gold_recall"], r["context_tokens_saved_pct"]) for a, r in redo.items()} == \
        {a: (r["accuracy"], r["gold_recall"], r["context_tokens_saved_pct"]) for a, r in rows.items()}
    assert rows["gold_only"]["failures"]["gold_dropped"] == 0 and "wrong answers [as_retrieved]:" in out


def test_per_category_audits_and_report_warnings(tmp_path):
    cfg = load_config(ROOT / "configs" / "compression.yaml", device="cpu",
                      overrides=["model.id=random:tiny-llama", "workload.max_new_tokens=2", "workload.warmup=0"])
    cfg.arms = {a: cfg.arms[a] for a in ("as_retrieved", "dedup_rerank", "extractive")}
    run_dir = Experiment(cfg, limit=4, progress=False).run(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    cats = summary["by_category"]["dedup_rerank"]
    assert set(cats) >= {"long_noisy"} and cats["long_noisy"]["duplicate_rate_after"] == 0
    assert cats["long_noisy"]["gold_recall"] == 1.0 and "gold_recall_step2_rerank" in cats["long_noisy"]
    report = (run_dir / "report.md").read_text()
    assert "## Context audit" in report and "- **Warning**: context as retrieved, long_noisy: duplicate rate" in report
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_context.py"), str(run_dir), "--items",
                          "--thresholds", "0,100000"], capture_output=True, text=True, check=True).stdout
    noisy = next(r["item_id"] for r in map(json.loads, (run_dir / "requests.jsonl").read_text().splitlines())
                 if r["category"] == "long_noisy")
    assert f"{noisy} " in out and "/2" in out              # the per-item table: gold position of two chunks kept
    last = json.loads(out.strip().splitlines()[-1])
    rep, base = last["replay"], next(r for r in last["arms"] if r["arm"] == "as_retrieved")
    assert set(rep["0"]) == {"extractive"}                        # only ratio-only arms can be replayed
    assert rep["100000"]["extractive"]["all"]["acc"][0] == pytest.approx(100 * base["accuracy"])   # all baseline answers
    assert rep["100000"]["extractive"]["all"]["tokens_saved_pct"] == 0.0


def test_ttft_alone_takes_the_queue_out_and_adds_the_context_steps():
    sys.path.insert(0, str(ROOT / "scripts"))
    from context_stats import service_ttft
    audit = lambda n, s: {"ContextPipeline": {"tokens_before": n, "steps": [{"seconds": 0.0}, {"seconds": s}]}}  # noqa: E731
    recs = [{"arm": "a", "arrival_s": 0.0, "first_token_s": 1.0, "finish_s": 3.0, "stats": audit(100, 0.5)},
            {"arm": "a", "arrival_s": 0.0, "first_token_s": 3.2, "finish_s": 4.0, "stats": audit(900, 0.1)},
            {"arm": "a", "arrival_s": 0.0, "first_token_s": 4.6, "finish_s": 5.0, "stats": audit(800, 0.0)}]
    out = service_ttft(recs)["a"]       # alone: 1.0 (its steps inside), 0.2 + 0.1, 0.6 + 0.0 seconds
    assert out["all"] == pytest.approx(600) and out["over_300"] == pytest.approx(450)
    one_by_one = [{**r, "arrival_s": t} for r, t in zip(recs, (0.0, 3.0, 4.0))]      # concurrency 1
    assert service_ttft(one_by_one)["a"]["all"] == pytest.approx(1000 * 0.6)     # = recorded TTFTs 1.0, 0.2, 0.6
