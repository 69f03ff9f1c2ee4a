"""`export --format vllm`: vLLM's result keys, units and per-request arrays, testbed extras apart,
incomplete runs marked; read back by vLLM's own sweep tooling where vllm is installed."""
import json
import shutil
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.config import validate
from testbed.errors import UserError
from testbed.report.vllm_export import QUEUE_KEYS, VLLM_KEYS, export_vllm
from testbed.runner import run_experiment

PINNED = json.loads((Path(__file__).parent / "data" / "vllm_result_keys.json").read_text())["keys"]
CFG = {"name": "exp", "model": {"id": "random:tiny-llama", "dtype": "float32"}, "device": "cpu", "threads": 1,
       "workload": {"dataset": "random", "limit": 5, "random": {"input_len": 12, "output_len": 4},
                    "ignore_eos": True, "warmup": 0, "arrival": {"kind": "sweep", "rates": [40, "inf"]}},
       "baseline": "hf", "arms": {"hf": {"engine": "hf", "batch_size": 2}, "paged": {"engine": "paged"}}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out, _ = run_experiment(validate(CFG), out_dir=tmp_path_factory.mktemp("runs"), progress=False)
    return out


def test_the_key_list_is_vllms():
    assert set(VLLM_KEYS) == set(PINNED)


def test_one_file_per_arm_and_rate_with_vllms_keys_and_units(run_dir):
    paths = export_vllm(run_dir)
    names = sorted(p.name for p in paths)
    assert names == ["hf-q40.json", "hf-qinf.json", "paged-q40.json", "paged-qinf.json", "summary.json"]
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    res = json.loads((run_dir / "vllm" / "paged-q40.json").read_text())
    assert set(PINNED) <= set(res) and set(res) - set(PINNED) <= {"testbed", *QUEUE_KEYS}
    mine = [r for r in records if r["arm"] == "paged" and r["rate"] == "40"]
    assert res["request_rate"] == 40.0 and json.loads((run_dir / "vllm" / "hf-qinf.json").read_text())[
        "request_rate"] == "inf"
    assert res["num_prompts"] == res["completed"] == 5 and res["output_lens"] == [4] * 5   # ignore_eos
    first = [r["token_times_s"][0] - r["arrival_s"] for r in mine]
    assert res["ttfts"] == pytest.approx(first)                           # seconds, from send (= arrival here)
    assert res["mean_ttft_ms"] == pytest.approx(1000 * sum(first) / 5)  # milliseconds
    assert [len(x) for x in res["itls"]] == [len(set(r["token_times_s"])) - 1 for r in mine]
    summary = json.loads((run_dir / "summary.json").read_text())
    wall = next(r["wall_s"] for r in summary["runs"] if r["arm"] == "paged" and r["rate"] == "40")
    assert res["duration"] == wall and res["output_throughput"] == pytest.approx(20 / wall)
    assert res["testbed"]["incomplete"] is False and "incomplete" not in res
    assert "ttft_ms_p50" in res["testbed"]


def test_an_incomplete_run_is_marked(run_dir, tmp_path):
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "incomplete": True}))
    try:
        res = json.loads(export_vllm(run_dir)[0].read_text())
    finally:
        (run_dir / "summary.json").write_text(json.dumps(summary))
    assert res["incomplete"] is True and res["testbed"]["incomplete"] is True


def test_cli_export_and_a_bad_dir(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--format", "vllm"]) == 0
    assert "summary.json" in capsys.readouterr().out
    assert main(["export", str(tmp_path), "--format", "vllm"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_vllms_sweep_tooling_reads_the_export(run_dir):
    pareto = pytest.importorskip("vllm.benchmarks.sweep.plot_pareto")
    export_vllm(run_dir)
    data = pareto._json_load_bytes(run_dir / "vllm" / "summary.json")
    prepared, skipped = pareto._prepare_records(data, user_count_var="max_concurrent_requests", gpu_count_var=None)
    assert len(prepared) == 4 and skipped == 0
    pareto.plot_pareto(run_dir / "vllm", user_count_var=None, gpu_count_var=None, label_by=["label"], dry_run=True)


BLOCKS = {**CFG, "workload": {"dataset": "random", "limit": 6, "random": {"input_len": 12, "output_len": 4},
                              "ignore_eos": True, "warmup": 0, "block_size": 2}}


def test_an_arm_cut_into_blocks_is_one_pass_over_all_its_blocks(tmp_path):
    """Interleaved blocks are separate passes in summary.json, with their own clocks: the export is one file per
    arm whose duration sums them (throughput as the summary's) and whose blocks lie end to end."""
    run_dir, _ = run_experiment(validate(BLOCKS), out_dir=tmp_path, progress=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert sum(r["arm"] == "paged" for r in summary["runs"]) == 3
    paths = export_vllm(run_dir)
    assert sorted(p.name for p in paths) == ["hf.json", "paged.json", "summary.json"]
    res = json.loads((run_dir / "vllm" / "paged.json").read_text())
    row = summary["arms"]["paged"]
    assert res["num_prompts"] == 6 and res["duration"] == pytest.approx(row["duration_s"])
    assert res["output_throughput"] == pytest.approx(row["output_throughput"])
    starts = res["start_times"]
    assert starts == sorted(starts) and starts[2] > starts[1] > 0.0 and starts[4] > starts[3]   # block after block


@pytest.mark.parametrize("damage,says", [
    (lambda lines: lines[:-1], "5 records of arm 'paged' (repeat 0, rate None) where summary.json counted 6"),
    (lambda lines: lines + lines[-1:], "7 records of arm 'paged' (repeat 0, rate None) where summary.json counted 6")])
def test_records_that_disagree_with_the_summary_are_an_error(tmp_path, damage, says):
    run_dir, _ = run_experiment(validate(BLOCKS), out_dir=tmp_path, progress=False)
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    (run_dir / "requests.jsonl").write_text("\n".join(damage(lines)) + "\n")
    with pytest.raises(UserError) as e:
        export_vllm(run_dir)
    assert says in e.value.message and "move summary.json aside" in e.value.fix


@pytest.mark.parametrize("text,says", [(b"\xff\xfename: x\n", "not UTF-8 text"), (b"name: [x\n  y: :\n", "malformed YAML"),
                                       (b"", "not a run's config"), (b"- 1\n", "not a run's config")])
def test_a_damaged_config_is_one_error_for_export_and_compare(run_dir, tmp_path, text, says, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "config.yaml").write_bytes(text)
    assert main(["export", str(copy), "--format", "vllm"]) == 2
    assert f"{copy / 'config.yaml'}: {says}" in capsys.readouterr().err
    assert main(["compare", str(copy), "--against", str(run_dir)]) == 2
    assert f"{copy / 'config.yaml'}: {says}" in capsys.readouterr().err
