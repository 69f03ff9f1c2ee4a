"""A run killed with SIGKILL (no summary.json, maybe a torn last line) stays readable: `report` and
`diagnose` rebuild its summary from requests.jsonl, marked incomplete. (SIGINT and SIGTERM: test_interrupt.py)"""
import json
from pathlib import Path

from testbed.cli import main
from testbed.config import validate
from testbed.report.compare import read_summary
from testbed.runner import run_experiment


def killed_run(tmp_path) -> tuple[Path, dict]:
    """A finished run with its summary removed and a torn last line: what SIGKILL leaves behind."""
    cfg = validate({"name": "quick", "model": {"id": "random:tiny-llama"}, "baseline": "a",
                    "workload": {"dataset": "golden", "limit": 4, "max_new_tokens": 3},
                    "arms": {"a": {"engine": "hf"}, "b": {"engine": "hf", "batch_size": 2}}})
    run_dir, full = run_experiment(cfg, out_dir=tmp_path / "out", progress=False)
    for name in ("summary.json", "summary.csv", "report.md"):
        (run_dir / name).unlink()
    with open(run_dir / "requests.jsonl", "a") as f:
        f.write('{"arm": "b", "request_id": "torn')
    return run_dir, json.loads(json.dumps(full, default=str))


def test_report_rebuilds_a_killed_runs_summary(tmp_path, capsys):
    run_dir, full = killed_run(tmp_path)
    capsys.readouterr()
    assert main(["report", str(run_dir)]) == 0
    table = capsys.readouterr().out
    assert "incomplete" in table and "True" in table
    rebuilt = read_summary(run_dir)
    assert rebuilt["incomplete"] is True and rebuilt["baseline"] == "a"
    for arm in ("a", "b"):         # what the records hold is recomputed exactly as the runner did
        for key in ("n_requests", "n_ok", "ttft_ms_p50", "e2el_ms_p90", "output_tokens_mean", "quality_accuracy"):
            if key in full["arms"][arm]:
                assert rebuilt["arms"][arm][key] == full["arms"][arm][key], (arm, key)


def test_a_rebuilt_summary_is_the_runners_for_the_same_passes(tmp_path, monkeypatch):
    from testbed.report import rebuild
    from testbed.report.compare import read_records
    run_dir, full = killed_run(tmp_path)
    records = read_records(run_dir)
    runs, walls = rebuild.passes(records), {}
    for p in full["runs"]:          # the runner's passes, each arm's in its run order
        walls.setdefault(p["arm"], []).append((p["n"], p["wall_s"]))
    assert {a: [len(run.records) for run in rs] for a, rs in runs.items()} == \
        {a: [n for n, _ in ps] for a, ps in walls.items()} and len(runs["a"]) == 2      # two blocks each, found again
    for arm, arm_runs in runs.items():
        for run, (_, wall) in zip(arm_runs, walls[arm]):
            assert 0 < run.wall_s <= wall        # the last token came before the pass ended
            run.wall_s = wall                    # the one figure the records cannot give exactly
    monkeypatch.setattr(rebuild, "passes", lambda recs: runs)
    rebuilt = json.loads(json.dumps(rebuild.rebuild_summary(run_dir, records), default=str))
    not_in_records = ("peak_memory_mb", "cpu_seconds", "cpu_s_per_output_token",   # memory tracker, psutil
                      "kv_cache_", "kv_waste_pct", "mean_batch_size")                # the hf engine's stats
    for arm, row in full["arms"].items():
        mine = rebuilt["arms"][arm]
        assert {k: row.get(k) for k in mine} == mine, arm            # every figure rebuilt is the runner's
        assert all(k.startswith(not_in_records) for k in set(row) - set(mine)), set(row) - set(mine)
    assert rebuilt["by_category"] == full["by_category"] and rebuilt["drift"] == full["drift"]


def test_diagnose_rebuilds_and_writes_the_summary(tmp_path):
    run_dir, _ = killed_run(tmp_path)
    assert main(["diagnose", str(run_dir), "--no-probe"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["incomplete"] is True and "diagnosis" in summary and (run_dir / "report.md").is_file()


def test_corrupt_run_directories_are_one_line_errors(tmp_path, capsys):
    run_dir, _ = killed_run(tmp_path)
    (run_dir / "config.yaml").write_text("a: &x [*x]\n")
    assert main(["diagnose", str(run_dir), "--no-probe"]) == 2
    assert "cycle" in capsys.readouterr().err
    good = (run_dir / "requests.jsonl").read_text().splitlines()[:-1]          # without the torn line
    (run_dir / "requests.jsonl").write_text("\n".join(good + ["[1, 2]", '{"arm": "a"}']) + "\n")
    assert main(["report", str(run_dir)]) == 2
    assert "requests.jsonl:" in (err := capsys.readouterr().err) and "is an array, expected object" in err
    (run_dir / "requests.jsonl").write_bytes(b"\xff\xfe\x00")
    assert main(["report", str(run_dir)]) == 2
    assert "UTF-8" in capsys.readouterr().err
