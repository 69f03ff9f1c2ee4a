"""publish --collect: a finished run becomes a committed reference with its provenance, and docs/results.md
indexes every reference; a dirty tree and an unknown sha are marked."""
import gzip
import json
import shutil
import subprocess
import sys

import pytest

from testbed import publish as pub
from testbed.cli import main
from testbed.errors import UserError
from testbed.report import RunWriter
from tests.test_report import build_summary, record


def _run(tmp_path, name, sha, device="cpu", incomplete=False):
    records = [record(arm, i, speed) for arm, speed in (("plain", 2), ("fast", 1)) for i in range(6)]
    writer = RunWriter(tmp_path / name)
    writer.write_config({"name": "unit", "baseline": "plain", "arms": {"plain": {"engine": "hf"}}})
    writer.write_env({"git_sha": sha, "device": device, "cpu_model": "Test CPU", "cpu_count": 2, "threads": 1,
                      "torch": "2.13.0+cpu", "transformers": "5.19", "python": "3.11"})
    for r in records:
        writer.append_record(r)
    summary = {**build_summary(records), "incomplete": incomplete}
    writer.write_summary(summary)
    writer.write_report(summary, records)
    return writer.run_dir


def test_collect_writes_the_reference_files_and_marks_a_dirty_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(pub, "GZIP_ABOVE", 100)               # requests.jsonl here is a few KB: gzip it
    run = _run(tmp_path, "unit-20260101T000000Z", "0123456789abcdef-dirty")
    ref = pub.collect(run, tmp_path / "reference")
    assert ref == tmp_path / "reference" / "unit"
    names = {p.name for p in ref.iterdir()}
    assert {"report.md", "summary.json", "summary.csv", "config.yaml", "env.json", "plots", "requests.jsonl.gz",
            "reference.json"} <= names and "requests.jsonl" not in names
    with gzip.open(ref / "requests.jsonl.gz", "rt") as f:
        assert len(f.read().splitlines()) == 12
    report = (ref / "report.md").read_text()
    assert report.startswith("# unit\n") and "`0123456789ab` **with uncommitted changes (dirty tree)**" in report
    assert "## Decision" in report and (ref / "plots" / "output_throughput.png").is_file()
    assert json.loads((ref / "reference.json").read_text())["dirty"] is True


def test_index_has_one_table_per_config_linking_reports_and_marks_unknown_sha(tmp_path):
    cpu = _run(tmp_path, "unit-20260101T000000Z", None)
    gpu = _run(tmp_path, "unit-20260102T000000Z", "fedcba9876543210", device="cuda")
    index = tmp_path / "docs" / "results.md"
    assert main(["publish", "--collect", str(cpu), str(gpu), "--dest", str(tmp_path / "reference"),
                 "--index", str(index)]) == 0
    text = index.read_text()
    assert text.count("## unit") == 1                              # one table for the config, CPU and GPU rows
    assert "[unit](../reference/unit/report.md)" in text and "[unit-cuda](../reference/unit-cuda/report.md)" in text
    assert "**unknown commit**" in text and "`fedcba987654`" in text and "Test CPU, 2 cores, 1 torch threads" in text
    assert "| fast " in text and "(×2.00" in text
    assert "**unknown commit**" in (tmp_path / "reference" / "unit" / "report.md").read_text()


def test_incomplete_runs_and_missing_paths_are_refused(tmp_path, capsys):
    run = _run(tmp_path, "unit-20260101T000000Z", "abc", incomplete=True)
    with pytest.raises(UserError, match="incomplete"):
        pub.collect(run, tmp_path / "reference")
    assert main(["publish", "--collect", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i.md")]) == 2
    assert "--collect" in capsys.readouterr().err and not (tmp_path / "i.md").exists()


def _no_name(run):
    summary = json.loads((run / "summary.json").read_text())
    del summary["name"]
    (run / "summary.json").write_text(json.dumps(summary))


@pytest.mark.parametrize("damage,says", [
    (lambda run: (run / "env.json").write_text("[1, 2]"), None),                  # read as an unrecorded env
    (lambda run: (run / "report.md").write_bytes(b"# unit\n\xff\xfe\n"), "report.md: not UTF-8 text"),
    (_no_name, "summary.json: no 'name'")])
def test_a_damaged_run_is_collected_or_refused_with_one_error(tmp_path, capsys, damage, says):
    run = _run(tmp_path, "unit-20260101T000000Z", "abc")
    damage(run)
    rc = main(["publish", "--collect", str(run), "--dest", str(tmp_path / "reference"),
               "--index", str(tmp_path / "i.md")])
    err = capsys.readouterr().err
    if says is None:
        assert rc == 0 and (tmp_path / "reference" / "unit" / "report.md").is_file()
    else:
        assert rc == 2 and f"{run / says}" in err and "fix:" in err


def test_collect_alone_says_nothing_of_this_tree(tmp_path, capsys, monkeypatch):
    """The references carry the collected run's own commit; this checkout's state is not theirs."""
    monkeypatch.setattr("testbed.env.git_sha", lambda: "0123-dirty")
    run = _run(tmp_path, "unit-20260101T000000Z", "abc")
    assert main(["publish", "--collect", str(run), "--dest", str(tmp_path / "ref"), "--index", str(tmp_path / "i.md")]) == 0
    assert "uncommitted changes" not in capsys.readouterr().err


def test_publish_runs_a_config_with_every_engine_registered(tmp_path):
    """In a fresh process (the registries empty): a paged arm validates, the run is collected and indexed."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("name: tinypub\nmodel: {id: random:tiny-llama}\n"
                   "workload: {dataset: golden, limit: 2, max_new_tokens: 4}\nbaseline: a\n"
                   "arms: {a: {engine: hf}, b: {engine: paged, kv_budget_tokens: 2048}}\n")
    res = subprocess.run([sys.executable, "-m", "testbed", "publish", str(cfg), "--dest", "ref", "--index", "index.md"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ref" / "tinypub" / "summary.json").is_file()
    assert "## tinypub" in (tmp_path / "index.md").read_text()


def _summary_dir(ref):
    (ref / "summary.json").unlink()
    (ref / "summary.json").mkdir()


def _summary_dangling(ref):
    (ref / "summary.json").unlink()
    (ref / "summary.json").symlink_to(ref / "nowhere.json")


@pytest.mark.parametrize("damage,says", [
    (_summary_dir, "/summary.json: a directory, not a file"),
    (_summary_dangling, "/summary.json: a broken link, not a file"),
    (lambda ref: (ref / "summary.json").unlink(), ": a reference without summary.json"),
    (lambda ref: (ref / "summary.json").write_text("{"), "/summary.json: malformed JSON")])
def test_a_reference_whose_summary_is_unreadable_stops_the_index(tmp_path, capsys, damage, says):
    """It used to drop out of docs/results.md unseen (only a summary.json that is a file was indexed)."""
    cpu = _run(tmp_path, "unit-20260101T000000Z", "abc")
    gpu = _run(tmp_path, "unit-20260102T000000Z", "def", device="cuda")
    args = ["--dest", str(tmp_path / "reference"), "--index", str(tmp_path / "i.md")]
    assert main(["publish", "--collect", str(cpu), str(gpu), *args]) == 0
    before = (tmp_path / "i.md").read_text()
    assert "[unit-cuda]" in before
    capsys.readouterr()
    damage(tmp_path / "reference" / "unit-cuda")
    assert main(["publish", "--collect", str(cpu), *args]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"error: {tmp_path / 'reference' / 'unit-cuda'}"), lines
    assert says in lines[0] and "publish --collect RUN_DIR" in lines[1] and "Traceback" not in "".join(lines)
    assert (tmp_path / "i.md").read_text() == before          # the index is not rewritten without it


def test_a_directory_that_is_no_reference_is_left_out_of_the_index(tmp_path):
    run = _run(tmp_path, "unit-20260101T000000Z", "abc")
    (tmp_path / "reference" / "notes").mkdir(parents=True)     # neither summary.json nor reference.json
    (tmp_path / "reference" / "README.md").write_text("x")
    assert main(["publish", "--collect", str(run), "--dest", str(tmp_path / "reference"),
                 "--index", str(tmp_path / "i.md")]) == 0
    assert "[unit]" in (tmp_path / "i.md").read_text() and "notes" not in (tmp_path / "i.md").read_text()


def test_a_staging_copy_left_by_a_crashed_collect_is_not_indexed_and_republishing_replaces(tmp_path):
    """A `<name>.tmp` (or `.old`) holding a summary.json used to be indexed as a reference of its own."""
    run = _run(tmp_path, "unit-20260101T000000Z", "abc")
    args = ["--dest", str(tmp_path / "reference"), "--index", str(tmp_path / "i.md")]
    assert main(["publish", "--collect", str(run), *args]) == 0
    for stale in ("other.tmp", "unit-cuda.old"):
        shutil.copytree(tmp_path / "reference" / "unit", tmp_path / "reference" / stale)
    assert main(["publish", "--collect", str(run), *args]) == 0
    text = (tmp_path / "i.md").read_text()
    assert "[unit]" in text and "other.tmp" not in text and "unit-cuda" not in text
    assert sorted(p.name for p in (tmp_path / "reference").iterdir()) == ["other.tmp", "unit", "unit-cuda.old"]
