"""scripts/bench_paged.py runs on the testbed runner and ends with one JSON line."""
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

