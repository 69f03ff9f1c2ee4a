"""The command line: exit codes, messages, the last stdout line as JSON, nothing half-written on bad input."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True, text=True, cwd=cwd)


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


TINY = """
name: clitest
model: {id: random:tiny-llama}
workload: {dataset: golden, limit: 2, max_new_tokens: 4}
baseline: a
arms: {a: {engine: hf}, b: {engine: hf, batch_size: 2}}
"""


def test_help_lists_commands():
    res = cli("--help")
    assert res.returncode == 0
    for cmd in ("run", "validate", "report", "fetch", "list"):
        assert cmd in res.stdout


def test_run_prints_table_and_json_last_line(tmp_path):
    res = cli("run", str(write(tmp_path, TINY)), "--out", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 0, res.stderr
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["name"] == "clitest" and set(last["arms"]) == {"a", "b"}
    assert last["arms"]["a"]["n_ok"] == 2
    assert "output_throughput" in last["arms"]["b"]
    run_dir = Path(last["run_dir"])
    assert (run_dir / "report.html").exists() and (run_dir / "summary.csv").exists()


def test_bad_inputs_exit_2_with_a_message_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    cases = {
        "unknown key": (TINY + "bogus: 1\n", "bogus: unknown key"),
        "missing dataset": (TINY.replace("dataset: golden", f"dataset: {tmp_path}/none.jsonl"), "workload.dataset"),
        "missing model": (TINY.replace("random:tiny-llama", "/no/such/model"), "model.id"),
        "beyond context": (TINY.replace("max_new_tokens: 4", "max_new_tokens: 99999"), "max_new_tokens"),
        "malformed": ("name: x\nmodel: [\n", "malformed YAML"),
    }
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases["empty dataset"] = (TINY.replace("dataset: golden", f"dataset: {empty}"), "workload.dataset")
    for name, (text, needle) in cases.items():
        res = cli("run", str(write(tmp_path, text)), "--out", str(out), "--quiet")
        assert res.returncode == 2, (name, res.stderr)
        assert needle in res.stderr, (name, res.stderr)
        assert "Traceback" not in res.stderr, name
    assert not out.exists() or not any(out.iterdir())


def test_validate_and_list():
    res = cli("validate", "configs/quickstart.yaml", "--device", "cpu")
    assert res.returncode == 0 and "ok" in res.stdout
    res = cli("list")
    assert res.returncode == 0 and "hf" in res.stdout and "golden/lookup" in res.stdout
