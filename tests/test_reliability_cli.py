"""The command line on bad input: one error line plus its fix, exit 2, no traceback and no run directory;
`validate` makes every check `run` makes before measuring; run directories are never shared."""
import json
import multiprocessing
from datetime import datetime, timezone
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.report.writer import create_run_dir

TINY = """name: t
model: {id: random:tiny-llama}
workload: {dataset: golden, limit: 2, max_new_tokens: 2}
baseline: a
arms: {a: {engine: hf}}
"""
HUGE_KV = TINY.replace("{engine: hf}", "{engine: paged, kv_budget_tokens: 1000000000000}")


def config(tmp_path, text=TINY):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def one_error(capsys, code) -> str:
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and err[0].startswith("error: ") and err[1].startswith("  fix: "), err
    return err[0]


@pytest.mark.parametrize("command", ["run", "validate"])
def test_out_naming_a_file(tmp_path, capsys, command):
    (tmp_path / "afile").write_text("x")
    line = one_error(capsys, main([command, config(tmp_path), "--out", str(tmp_path / "afile"), "--device", "cpu"]))
    assert "is a file" in line and (tmp_path / "afile").read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc: a directory that refuses new entries")
def test_out_naming_a_directory_that_refuses_new_entries(tmp_path, capsys):
    # root passes the writable check there, and mkdir used to fail with a FileNotFoundError traceback
    line = one_error(capsys, main(["run", config(tmp_path), "--out", "/proc", "--device", "cpu", "--quiet"]))
    assert "/proc" in line and "cannot create" in line


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_kv_cache_beyond_memory_is_refused_before_any_run_directory(tmp_path, capsys, command):
    out = tmp_path / "out"
    line = one_error(capsys, main([command, config(tmp_path, HUGE_KV), "--out", str(out), "--device", "cpu"]))
    assert "KV cache" in line and "GiB" in line and not out.exists()


@pytest.mark.parametrize("value", ['"abc"', "-5"])
def test_a_bad_item_max_new_tokens_stops_before_the_run(tmp_path, capsys, value):
    data = tmp_path / "d.jsonl"
    data.write_text(f'{{"id": "a", "question": "q", "answers": ["x"], "max_new_tokens": {value}}}\n')
    out = tmp_path / "out"
    line = one_error(capsys, main(["run", config(tmp_path, TINY.replace("dataset: golden", f"dataset: {data}")),
                                   "--out", str(out), "--device", "cpu", "--quiet"]))
    assert "max_new_tokens" in line and not out.exists()


def test_validate_loads_the_model(tmp_path, capsys):
    line = one_error(capsys, main(["validate", config(tmp_path, TINY.replace("random:tiny-llama",
                                                                             str(tmp_path / "no-model")))]))
    assert "model.id" in line


def test_validate_passes_a_good_config_without_writing(tmp_path, capsys):
    assert main(["validate", config(tmp_path), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert ": ok" in capsys.readouterr().out and not (tmp_path / "out").exists()


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_port_out_of_range(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as e:
        main(["serve", config(tmp_path), "--arm", "a", "--port", port])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and "--port" in err


@pytest.mark.parametrize("flag,value", [("--max-queue", "0"), ("--max-queue", "-5"), ("--api-key", ""),
                                        ("--api-key", "  ")])
def test_serve_refuses_a_queue_of_nothing_and_an_empty_key(tmp_path, capsys, flag, value):
    # each used to start a server: one that answered every request 503, one guarded by an empty key
    with pytest.raises(SystemExit) as e:
        main(["serve", config(tmp_path), "--arm", "a", flag, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and flag in err


@pytest.mark.parametrize("limit", ["0", "-2", "x"])
def test_limit_must_be_positive(tmp_path, capsys, limit):
    with pytest.raises(SystemExit) as e:
        main(["run", config(tmp_path), "--limit", limit])
    assert e.value.code == 2 and "--limit" in capsys.readouterr().err


def _make(args):
    out, now = args
    return str(create_run_dir(out, "same", now))


def test_three_runs_in_the_same_second_get_three_directories(tmp_path):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with multiprocessing.get_context("fork").Pool(3) as pool:
        dirs = pool.map(_make, [(tmp_path, now)] * 3)
    assert len(set(dirs)) == 3 and sorted(p.name for p in tmp_path.iterdir()) == \
        ["same-20260101T000000Z", "same-20260101T000000Z-2", "same-20260101T000000Z-3"]


def test_a_run_writes_its_own_directory_next_to_an_existing_one(tmp_path, capsys):
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["run", config(tmp_path), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    dirs = sorted(out.iterdir())
    assert len(dirs) == 2
    for d in dirs:       # each directory holds one run's records only
        assert len((d / "requests.jsonl").read_text().splitlines()) == 2
        assert json.loads((d / "env.json").read_text())["trust_remote_code"] == []
