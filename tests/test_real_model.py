"""Slow: the real SmolLM2-135M-Instruct end to end (fetched offline from PyPI, cached)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.config import ModelSpec
from testbed.models import load_model

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT.parent / "shared" / "tools" / "check_results.py"


@pytest.mark.slow
def test_smollm2_answers_a_clean_lookup():
    lm = load_model(ModelSpec(id="smollm2-135m"), "cpu")
    assert lm.model.config.num_hidden_layers == 30 and lm.tokenizer.chat_template
    msgs = [{"role": "user", "content": "Context: The warehouse in Tilburg opens at 7:30 am.\n"
                                        "Question: When does the warehouse in Tilburg open?"}]
    text = lm.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    out = lm.model.generate(ids, max_new_tokens=16, do_sample=False)
    assert "7:30" in lm.tokenizer.decode(out[0, ids.shape[1]:])


@pytest.mark.slow
def test_quickstart_end_to_end_on_smollm2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "testbed", "run", "configs/quickstart.yaml", "--device", "cpu",
                          "--limit", "6", "--set", "workload.max_new_tokens=16", "--out", str(tmp_path), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    last = json.loads(res.stdout.strip().splitlines()[-1])
    arms = last["arms"]
    assert arms["batch1"]["n_ok"] == 6 and arms["batch8"]["n_ok"] == 6
    assert 0 <= arms["batch1"]["quality_accuracy"] <= 1
    assert "output_throughput_vs_baseline" in arms["batch8"] and "match_rate_vs_baseline" in arms["batch8"]
    if CHECKER.exists():
        chk = subprocess.run([sys.executable, str(CHECKER), "contract", last["run_dir"]], capture_output=True, text=True)
        assert chk.returncode == 0, chk.stdout
