"""Ctrl-C (SIGINT) or SIGTERM mid-run keeps the requests measured so far and writes a summary marked incomplete."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOW_ARRIVALS = """
name: interrupted
model: {id: random:tiny-llama}
workload: {dataset: golden, limit: 40, max_new_tokens: 4, arrival: {kind: poisson, rate: 4}}
baseline: a
arms: {a: {engine: hf}, b: {engine: hf}}
"""


def default_sigint() -> None:
    """A shell's background job inherits SIGINT ignored, and Python then never raises KeyboardInterrupt:
    give the child the default disposition so Ctrl-C behaves as at a terminal, wherever the suite runs."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_keeps_records_and_marks_summary_incomplete(tmp_path, sig):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SLOW_ARRIVALS)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "run", str(cfg), "--out", str(out), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 60
    records = []
    while time.time() < deadline and len(records) < 3:
        records = list(out.glob("*/requests.jsonl"))
        records = records[0].read_text().splitlines() if records else []
        time.sleep(0.1)
    assert len(records) >= 3, "the run never wrote records"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-1500:]
    run_dir = next(out.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    kept = (run_dir / "requests.jsonl").read_text().splitlines()
    assert summary["incomplete"] is True
    assert len(kept) >= len(records) and len(kept) < 80
    assert summary["arms"]["a"]["n_requests"] == sum(1 for line in kept if json.loads(line)["arm"] == "a")
