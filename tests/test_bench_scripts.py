"""scripts/bench_paged.py, bench_spec.py and rederive_drift.py: each run end to end on real inputs."""
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def last_json(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_bench_paged_runs_both_arms_on_the_same_requests():
    c = last_json("bench_paged.py", "--model", "random:tiny-llama", "--requests", "3", "--prompt-range", "20", "80",
                  "--output-range", "4", "8", "--kv-budget", "512", "--rounds", "2")
    assert c["match_rate"] == 1.0 and c["passes_per_arm"] == 2 and c["requests"] == 3
    assert c["hf_batch_size"] == 512 // 88 and c["paged_max_concurrent_seqs"] == 3    # every request fits at once
    assert 12 <= c["output_tokens_per_pass"] <= 24           # EOS ignored: each request decodes its 4-8 tokens
    assert c["paged_kv_waste_pct"] < c["hf_kv_waste_pct"]
    assert c["hf_output_tok_s"] > 0 and c["paged_output_tok_s"] > 0


def test_bench_spec_reports_each_method_against_the_baseline():
    out = last_json("bench_spec.py", "--model", "random:tiny-llama", "--limit", "2", "--max-new-tokens", "6",
                    "--methods", "ours_pl,paged_pl,hf_pl", "--batch-methods", "paged_pl", "--batch", "2")
    rows = out["methods"]
    assert set(rows) == {"base", "paged_base", "ours_pl", "paged_pl", "hf_pl"} and out["prompts"] == 2
    assert all(r["match"] == 1.0 for r in rows.values())       # greedy float32: lossless, transformers' too
    assert rows["base"]["speedup"] == 1.0 and "alpha" not in rows["base"]
    pl = rows["ours_pl"]
    assert 0 <= pl["alpha"] <= 1 and pl["c"] > 0 and 1 <= pl["k_mean"] <= 10 and pl["bound"] > 0
    assert set(out["batch"]["methods"]) == {"paged_base", "paged_pl"}
    assert out["batch"]["methods"]["paged_pl"]["match"] == 1.0


def _as_first_published(tmp_path: Path) -> Path:
    """The capacity reference with the drift figure its run first printed (every rate pooled: -46%)."""
    from types import SimpleNamespace
    from testbed.metrics.drift import baseline_drift
    sys.path.insert(0, str(ROOT / "scripts"))
    from rederive_drift import runs_from
    ref = tmp_path / "capacity"
    shutil.copytree(ROOT / "results" / "reference" / "capacity", ref)
    summary = json.loads((ref / "summary.json").read_text())
    records = [json.loads(line) for line in gzip.open(ref / "requests.jsonl.gz", "rt")]
    base = runs_from(summary, records)[summary["baseline"]]
    summary["drift"] = {**baseline_drift([SimpleNamespace(**{**vars(r), "rate": None, "block": r.started})
                                          for r in base]), "warning": True}
    (ref / "summary.json").write_text(json.dumps(summary))
    return ref


def test_rederive_drift_reproduces_the_committed_capacity_drift(tmp_path):
    ref = _as_first_published(tmp_path)
    assert json.loads((ref / "summary.json").read_text())["drift"]["moved"] < -0.4
    subprocess.run([sys.executable, str(ROOT / "scripts" / "rederive_drift.py"), str(ref)], check=True,
                   capture_output=True, text=True)
    committed = json.loads((ROOT / "results" / "reference" / "capacity" / "summary.json").read_text())["drift"]
    assert json.loads((ref / "summary.json").read_text())["drift"] == committed and "warning" not in committed
    assert "in the same round" in committed["not_measurable"]      # the lockstep search: no pair far enough apart
    report = (ref / "report.md").read_text()
    assert "**Warning**: Baseline drift" not in report and "re-derived from these records" in report
    assert "Baseline drift: not measurable for this run" in report
    meta = json.loads((ref / "reference.json").read_text())
    assert "rederived" in meta and meta["rederived_earlier"][0]["commit"] == "54b499c"     # the earlier one kept


def test_rederive_drift_refuses_records_out_of_their_run_order(tmp_path):
    ref = _as_first_published(tmp_path)
    summary = json.loads((ref / "summary.json").read_text())
    summary["runs"] = summary["runs"][::-1]          # the old figure no longer comes back: refuse
    (ref / "summary.json").write_text(json.dumps(summary))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "rederive_drift.py"), str(ref)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "not the one that ran" in done.stderr
