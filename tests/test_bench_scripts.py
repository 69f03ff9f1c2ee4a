"""scripts/bench_paged.py and scripts/bench_spec.py run on the testbed runner and end with one JSON line."""
import json
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
