"""Damaged run directories and empty paths on the command line: one error line plus its fix, exit 2, no
traceback, and nothing measured lost or half rewritten. The run directory is a real tiny run (`run` on a
random model), damaged the way a crash, a stray `mkdir` or a hand edit leaves one; compare's NaN ratios are
listed as not checked, never passed."""
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from testbed.cli import main

TINY = """name: tiny
model: {id: random:tiny-llama, dtype: float32}
threads: 1
workload: {dataset: golden, limit: 4, max_new_tokens: 4, warmup: 0}
baseline: a
arms: {a: {engine: hf}, b: {engine: hf, batch_size: 2}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished run of two arms (a, b), made by the command line as a user makes it."""
    root = tmp_path_factory.mktemp("run")
    (root / "tiny.yaml").write_text(TINY)
    assert main(["run", str(root / "tiny.yaml"), "--out", str(root / "out"), "--device", "cpu", "--quiet"]) == 0
    return next((root / "out").iterdir())


@pytest.fixture
def copy(run, tmp_path):
    return Path(shutil.copytree(run, tmp_path / run.name))


def one_error(capsys, code) -> str:
    """The error line, after checking that it is the only one (with its fix) and that the exit code is 2."""
    assert code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 2, err
    assert lines[0].startswith("error: ") and lines[1].startswith("  fix: "), err
    return lines[0]


def _edit_summary(run_dir: Path, change) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    change(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary))


def _drop_arm_b(run_dir: Path) -> None:
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    (run_dir / "requests.jsonl").write_text("".join(f"{x}\n" for x in lines if json.loads(x)["arm"] != "b"))


def empty_arm(run_dir: Path) -> None:
    """Arm b in summary.json, its records gone, arm a's kept."""
    _drop_arm_b(run_dir)


def empty_arm_no_counts(run_dir: Path) -> None:
    """The same in a summary without per-pass counts (from before runs had n): checked per arm."""
    _drop_arm_b(run_dir)
    _edit_summary(run_dir, lambda s: s.pop("runs"))


def arm_empty_object(run_dir: Path) -> None:
    """Arm b's row in summary.json is {}: it used to pass diagnose, publish and export (only compare refused it)."""
    _edit_summary(run_dir, lambda s: s["arms"].update(b={}))


def arm_not_object(run_dir: Path) -> None:
    _edit_summary(run_dir, lambda s: s["arms"].update(b=["n_requests", 4]))


def plots_file(run_dir: Path) -> None:
    shutil.rmtree(run_dir / "plots")
    (run_dir / "plots").write_text("x")


def summary_dir(run_dir: Path) -> None:
    (run_dir / "summary.json").unlink()
    (run_dir / "summary.json").mkdir()


def requests_dir(run_dir: Path) -> None:
    (run_dir / "requests.jsonl").unlink()
    (run_dir / "requests.jsonl").mkdir()


def _args(command: str, run_dir: Path, other: Path, tmp_path: Path) -> list[str]:
    return {"diagnose": ["diagnose", str(run_dir), "--no-probe"], "report": ["report", str(run_dir)],
            "compare": ["compare", str(run_dir), "--against", str(other)],
            "compare-ref": ["compare", str(other), "--against", str(run_dir)],
            "publish": ["publish", "--collect", str(run_dir), "--dest", str(tmp_path / "ref"),
                        "--index", str(tmp_path / "results.md")],
            "export": ["export", str(run_dir), "--format", "vllm"]}[command]


READERS_OF_RECORDS = ("diagnose", "publish", "export")
EVERY = ("diagnose", "report", "compare", "compare-ref", "publish", "export")
CASES = [(empty_arm, READERS_OF_RECORDS, r"requests\.jsonl: 0 records of arm 'b'"),
         (empty_arm_no_counts, READERS_OF_RECORDS, r"requests\.jsonl: no records of arm 'b' where summary\.json"),
         (arm_empty_object, EVERY, r"/summary\.json: arms\.b: is an empty object, expected 'n_requests'"),
         (arm_not_object, EVERY, r"/summary\.json: arms\.b: is an array, expected object"),
         (plots_file, ("diagnose", "publish"), r"/plots: a file where the plots directory goes"),
         (summary_dir, EVERY, r"/summary\.json: a directory, not a file"),
         (requests_dir, READERS_OF_RECORDS, r"/requests\.jsonl: a directory, not a file")]


@pytest.mark.parametrize("damage,command,says", [(d, c, says) for d, commands, says in CASES for c in commands],
                         ids=[f"{d.__name__}-{c}" for d, commands, _ in CASES for c in commands])
def test_a_damaged_run_directory_is_one_error_naming_the_file(run, copy, tmp_path, capsys, damage, command, says):
    damage(copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    line = one_error(capsys, main(_args(command, copy, run, tmp_path)))
    assert line.startswith(f"error: {copy}") and re.search(says, line), line
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before     # nothing rewritten
    assert not (tmp_path / "ref").exists() and not (tmp_path / "results.md").exists() and not (copy / "vllm").exists()


def test_diagnose_refuses_a_plots_file_before_writing_anything(copy, capsys):
    """It used to write diagnosis.json and summary.json, then fail on plots/ with a FileExistsError traceback."""
    plots_file(copy)
    (copy / "diagnosis.json").unlink()
    stamp = (copy / "summary.json").stat().st_mtime_ns
    one_error(capsys, main(["diagnose", str(copy), "--no-probe"]))
    assert not (copy / "diagnosis.json").exists() and (copy / "summary.json").stat().st_mtime_ns == stamp


def test_what_the_damage_does_not_touch_is_still_shown(copy, capsys):
    """report and compare read summary.json only: a damaged requests.jsonl does not hide what was measured."""
    requests_dir(copy)
    assert main(["report", str(copy)]) == 0
    assert capsys.readouterr().out.count(copy.name) == 2          # one row per arm
    assert main(["compare", str(copy), "--against", str(copy)]) == 0
    assert "0 moved beyond them" in capsys.readouterr().out


def _nan(row: dict, key: str) -> None:
    row[key] = row[key + "_ci_low"] = row[key + "_ci_high"] = math.nan


def test_compare_lists_a_nan_ratio_as_not_checked_and_still_gates_the_rest(run, copy, tmp_path, capsys):
    _edit_summary(copy, lambda s: _nan(s["arms"]["b"], "ttft_ms_mean_vs_baseline"))
    assert main(["compare", str(run), "--against", str(copy), "--fail-on-regression"]) == 0   # NaN in the reference
    assert "not checked: b: ttft_ms_mean_vs_baseline (the reference's" in capsys.readouterr().out
    assert main(["compare", str(copy), "--against", str(run), "--fail-on-regression"]) == 1   # lost in the new run
    assert "failing: 1 metric(s) the reference measured are NaN in the new run" in capsys.readouterr().err
    assert main(["compare", str(copy), "--against", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "not checked: b: ttft_ms_mean_vs_baseline (the new run's ratio and interval are NaN)" in out
    assert out[-2].endswith("; 1 not checked (a NaN ratio or interval)")
    result = json.loads(out[-1])
    assert result["not_checked"] == [{"arm": "b", "metric": "ttft_ms_mean_vs_baseline",
                                      "why": "the new run's ratio and interval are NaN", "nan_in": ["new run"]}]
    assert result["checked"] > 0

    ref = Path(shutil.copytree(run, tmp_path / "ref"))      # a real regression beside the NaN still fails the gate
    _edit_summary(ref, lambda s: s["arms"]["b"].update(quality_accuracy=0.0, quality_accuracy_ci_low=0.0,
                                                       quality_accuracy_ci_high=0.1))
    _edit_summary(copy, lambda s: s["arms"]["b"].update(quality_accuracy=0.9, quality_accuracy_ci_low=0.8,
                                                        quality_accuracy_ci_high=1.0))
    assert main(["compare", str(copy), "--against", str(ref), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "moved beyond its 95% CI: b: quality_accuracy" in out and "not checked: b: ttft_ms_mean_vs_baseline" in out


@pytest.mark.parametrize("side", ["new", "ref"])
def test_compare_refuses_when_every_metric_is_nan(run, copy, capsys, side):
    def all_nan(s):
        for row in s["arms"].values():
            for key in [k for k in row if k + "_ci_low" in row]:
                _nan(row, key)
    _edit_summary(copy, all_nan)
    new, ref = (copy, run) if side == "new" else (run, copy)
    line = one_error(capsys, main(["compare", str(new), "--against", str(ref), "--fail-on-regression"]))
    assert line.startswith(f"error: {copy}: every metric with an interval is NaN") and "nothing can be gated" in line
    side_name = "new run" if side == "new" else "reference"
    assert f"the {side_name}'s ratio and interval are NaN" in line


def _cwd_and_config(tmp_path, monkeypatch, text: str) -> tuple[Path, str]:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")         # where Path("") writes
    (tmp_path / "c.yaml").write_text(text)
    return tmp_path / "cwd", str(tmp_path / "c.yaml")


@pytest.mark.parametrize("command,out", [("run", ""), ("validate", ""), ("run", "  ")])
def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, command, out):
    """`--out ""` used to fall back to the config's output_dir unseen."""
    cwd, cfg = _cwd_and_config(tmp_path, monkeypatch, TINY)
    line = one_error(capsys, main([command, cfg, "--out", out, "--device", "cpu"]))
    assert line == "error: --out is empty" and list(cwd.iterdir()) == []


@pytest.mark.parametrize("command", ["run", "validate"])
def test_an_empty_output_dir_in_the_config_is_refused_at_load(tmp_path, capsys, monkeypatch, command):
    cwd, cfg = _cwd_and_config(tmp_path, monkeypatch, TINY + 'output_dir: ""\n')
    assert main([command, cfg, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "c.yaml: invalid config" in err and list(cwd.iterdir()) == []
    assert "  output_dir: an empty path; give a directory, e.g. output_dir: results (or leave it out) (got '')" \
        in err.splitlines()


@pytest.mark.parametrize("flag,value,says", [("--dest", "", "--dest is empty"), ("--index", "", "--index is empty"),
                                             ("--index", "DIR", "a directory, not a file"),
                                             ("--dest", "FILE", "a file, not a directory")])
def test_publish_refuses_an_empty_or_wrong_kind_of_destination(run, tmp_path, capsys, monkeypatch, flag, value, says):
    monkeypatch.chdir(tmp_path)         # an empty --dest used to publish into the working directory
    (tmp_path / "DIR").mkdir()
    (tmp_path / "FILE").write_text("x")
    args = {"--dest": str(tmp_path / "ref"), "--index": str(tmp_path / "results.md"), flag: value}
    line = one_error(capsys, main(["publish", "--collect", str(run), *[x for kv in args.items() for x in kv]]))
    assert line.startswith(f"error: {flag}") and says in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR", "FILE"] and not any((tmp_path / "DIR").iterdir())
