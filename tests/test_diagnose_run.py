"""The probes on a tiny random model, the diagnosis at the end of every run, and `testbed diagnose RUN_DIR`."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.arm import ArmSetting
from testbed.config import validate
from testbed.diagnose.classify import Probe
from testbed.diagnose.probe import PROBES_FILE, ProbeRunner, read_cache
from testbed.diagnose.run import diagnose_run_dir
from testbed.errors import UserError
from testbed.metrics.quality import score_output
from testbed.runner import Experiment
from testbed.workloads.items import Chunk, Item

ROOT = Path(__file__).resolve().parents[1]
SETTING = {"a": ArmSetting(0.0, 1.0, 0, 0, 6, None)}


def item(answers=("Ann",), item_id="q1"):
    return Item(item_id, "lookup", "Who signed?", list(answers), scorer="exact",
                chunks=[Chunk("g", "Ann signed the lease."), Chunk("d", "Bob read it.")], gold_chunk_ids=["g"])


def test_probe_answers_from_the_chosen_chunks_scores_like_the_run_and_caches(tmp_path, tiny_lm):
    items = {"q1": item()}
    probe = ProbeRunner(tmp_path, items, SETTING, {tiny_lm.spec_id: tiny_lm})
    p = Probe("gold_only", "a", "q1", tiny_lm.spec_id, ("g",))
    first = probe(p)
    row = json.loads((tmp_path / PROBES_FILE).read_text().splitlines()[0])
    assert row["chunk_ids"] == ["g"] and row["status"] == "finished" and row["output_text"]
    assert first is row["correct"] is score_output(items["q1"], row["output_text"])["correct"]
    assert probe.counts == {"cached": 0, "run": 1, "not_run": 0}

    again = ProbeRunner(tmp_path, items, SETTING, models={}, load=False)   # no model at hand: the cache answers
    assert again(p) is first and again.counts["cached"] == 1 and again.counts["run"] == 0


def test_probe_is_right_when_the_reference_is_what_the_model_says(tmp_path, tiny_lm):
    models = {tiny_lm.spec_id: tiny_lm}
    p = Probe("gold_only", "a", "q1", tiny_lm.spec_id, ("g",))
    (tmp_path / "one").mkdir()
    probe = ProbeRunner(tmp_path / "one", {"q1": item()}, SETTING, models)
    assert probe(p) is False                         # a random model does not say "Ann"
    said = json.loads((tmp_path / "one" / PROBES_FILE).read_text())["output_text"]
    (tmp_path / "two").mkdir()
    echo = ProbeRunner(tmp_path / "two", {"q1": item(answers=(said,))}, SETTING, models)
    assert echo(p) is True                           # greedy: the same prompt gives the same words


def test_probe_not_run_without_a_model_or_past_its_budget(tmp_path, tiny_lm):
    p = Probe("gold_only", "a", "q1", tiny_lm.spec_id, ("g",))
    assert ProbeRunner(tmp_path, {"q1": item()}, SETTING, models={}, load=False)(p) is None
    late = ProbeRunner(tmp_path, {"q1": item()}, SETTING, {tiny_lm.spec_id: tiny_lm}, budget_s=0)
    assert late(p) is None and late.counts["not_run"] == 1 and not (tmp_path / PROBES_FILE).exists()


CONFIG = {"name": "diag", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "threads": 1,
          "workload": {"dataset": "golden", "limit": 3, "max_new_tokens": 4, "warmup": 0},
          "baseline": "plain",
          "arms": {"plain": {"engine": "hf"},
                   "top1": {"engine": "hf", "context": {"steps": [{"name": "rerank", "method": "bm25", "top_n": 1}]}}}}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    exp = Experiment(validate(CONFIG), progress=False)
    return exp.run(tmp_path_factory.mktemp("runs"))


def check_adds_up(diag: dict, run_dir: Path):
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    for arm, a in diag["arms"].items():
        assert a["failures"] == sum(r["arm"] == arm and not r["correct"] for r in records) == sum(a["counts"].values())


def test_every_run_writes_the_diagnosis_and_its_report_section(run_dir):
    diag = json.loads((run_dir / "diagnosis.json").read_text())
    check_adds_up(diag, run_dir)
    assert diag["probes"]["run"] > 0 and (run_dir / PROBES_FILE).exists()       # no gold-only arm: probes ran
    assert diag["arms"]["plain"]["counts"]["needs_probe"] == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["diagnosis"]["arms"] == diag["arms"] and "rows" not in summary["diagnosis"]
    assert "## Failure diagnosis" in (run_dir / "report.md").read_text()
    assert "<h2>Failure diagnosis</h2>" in (run_dir / "report.html").read_text()


def test_diagnose_command_reuses_the_probes_and_ends_with_json(run_dir):
    res = cli("diagnose", str(run_dir))
    assert res.returncode == 0, res.stderr
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["probes"]["run"] == 0 and last["probes"]["cached"] > 0
    assert "Rule of thumb" in res.stdout and set(last["arms"]) == {"plain", "top1"}


def test_no_probe_leaves_the_unanswered_items_apart_and_still_adds_up(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    (copy / PROBES_FILE).unlink()
    res = cli("diagnose", str(copy), "--no-probe")
    assert res.returncode == 0, res.stderr
    diag = json.loads((copy / "diagnosis.json").read_text())
    check_adds_up(diag, copy)
    assert diag["probes"]["run"] == 0 and diag["arms"]["plain"]["counts"]["needs_probe"] > 0
    assert "Needs a probe" in (copy / "report.md").read_text()


def test_diagnose_bad_run_dir_is_a_clear_error(tmp_path):
    for path, needle in ((tmp_path / "none", "no such directory"), (tmp_path, "not a run directory")):
        res = cli("diagnose", str(path))
        assert res.returncode == 2 and "RUN_DIR" in res.stderr and needle in res.stderr
        assert "Traceback" not in res.stderr


def test_a_damaged_probe_cache_is_skipped_line_by_line(tmp_path):
    """The cache only saves work: a line that is not a probe row is run again, not a traceback."""
    good = {"key": "k", "correct": True}
    (tmp_path / PROBES_FILE).write_bytes(b"\xff\xfe\n{torn\n[1]\n" + json.dumps({"key": 3}).encode() + b"\n"
                                         + json.dumps(good).encode() + b"\n")
    assert read_cache(tmp_path / PROBES_FILE) == {"k": good}


def test_records_of_an_arm_the_config_lacks_are_an_error(run_dir, tmp_path):
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    lines = (copy / "requests.jsonl").read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "arm": "ghost"})
    (copy / "requests.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"arms \['ghost'\] are not in .*config.yaml"):
        diagnose_run_dir(copy, probe=False)


def test_records_the_summary_counted_otherwise_are_an_error(run_dir, tmp_path):
    """A torn requests.jsonl beside a whole summary: the diagnosis and the report it rewrites would be short."""
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    lines = (copy / "requests.jsonl").read_text().splitlines()
    (copy / "requests.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    with pytest.raises(UserError, match=r"requests.jsonl: \d+ records of arm '\w+' .* where summary.json counted"):
        diagnose_run_dir(copy, probe=False)
