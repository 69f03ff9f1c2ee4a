"""The regression gate on a tiny random model: a deliberately slowed engine is flagged, an unchanged rerun
passes, and runs of different configs or models are an error naming what differs. On the committed quickstart
reruns (docs/gate/runs/): every unchanged pair passes, which the intervals alone do not, and a rerun-sized
shift is reported as within noise unless --tolerance is tightened."""
import itertools
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from testbed.arm import ArmPlan
from testbed.cli import main
from testbed.compare import MACHINE, TOLERANCE, compare_dirs, env_differences, tolerance_for
from testbed.config import load_config
from testbed.engines.hf import HFEngine
from testbed.errors import UserError
from testbed.runner import Experiment


def _config(tmp_path):
    data = tmp_path / "items.jsonl"      # short questions, no gold chunks: nothing for the diagnosis to probe
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answers": [str(2 * i)]})
                            + "\n" for i in range(16)))
    path = tmp_path / "gate.yaml"
    path.write_text(f"name: gate\nmodel: {{id: 'random:tiny-llama', dtype: float32}}\nthreads: 1\n"
                    f"workload: {{dataset: '{data}', limit: 16, max_new_tokens: 4, warmup: 1, block_size: 2, "
                    f"ignore_eos: true}}\nbaseline: a\narms: {{a: {{engine: hf, batch_size: 1}}, "
                    f"b: {{engine: hf, batch_size: 2}}}}\n")
    return path


@pytest.fixture
def steps(monkeypatch):
    """Every arm step sleeps 10 ms (so the shared machine's noise is small beside it); slow["b"] adds more to b."""
    slow = {"b": 0.0}
    orig_new, orig_step = ArmPlan.new_engine, HFEngine.step

    def new_engine(self):
        engine = orig_new(self)
        engine.arm_name = self.name
        return engine

    def step(self):
        if hasattr(self, "arm_name"):
            time.sleep(0.01 + slow.get(self.arm_name, 0.0))
        return orig_step(self)
    monkeypatch.setattr(ArmPlan, "new_engine", new_engine)
    monkeypatch.setattr(HFEngine, "step", step)
    return slow


def _run(cfg_path, out):
    return Experiment(load_config(cfg_path, device="cpu"), progress=False).run(out)


def test_a_slowed_engine_is_flagged_and_an_unchanged_rerun_passes(tmp_path, steps, capsys):
    cfg = _config(tmp_path)
    ref, same = _run(cfg, tmp_path / "runs"), _run(cfg, tmp_path / "runs")
    steps["b"] = 0.04                                        # b's engine: 40 ms more per step, ~5x slower
    slowed = _run(cfg, tmp_path / "runs")

    report = (ref / "report.md").read_text()         # the reports carry the decision and every ratio's interval
    assert report.index("## Decision") < report.index("## Comparison") and "**Deploy: " in report
    assert "### Every ratio to the baseline, 95% CI" in report and "| output_throughput " in report
    assert "<h2>Decision</h2>" in (ref / "report.html").read_text()
    env = json.loads((ref / "env.json").read_text())
    assert env["threads"] == 1 and env["threads_from"] == "config"
    summary = json.loads((ref / "summary.json").read_text())
    assert summary["decision"]["pareto_front"] and "output_throughput_vs_baseline_ci_low" in summary["arms"]["b"]

    found, checked, _ = compare_dirs(same, ref)
    assert checked > 20 and not [m for m in found if m.gated], [m.line() for m in found]
    found, _, _ = compare_dirs(slowed, ref)
    moved = {m.metric: m for m in found if m.arm == "b" and m.gated}
    assert "output_throughput_vs_baseline" in moved and moved["output_throughput_vs_baseline"].worse
    assert any(k.startswith(("ttft_ms", "e2el_ms")) and m.worse for k, m in moved.items())   # hf sleeps before a batch
    assert not any(k.startswith("quality_") for k in moved)           # same tokens, same answers

    assert main(["compare", str(same), "--against", str(ref), "--fail-on-regression"]) == 0
    assert main(["compare", str(slowed), "--against", str(ref)]) == 0            # reports, does not fail
    assert main(["compare", str(slowed), "--against", str(ref), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "moved beyond its 95% CI: b: output_throughput_vs_baseline" in out and "(worse, " in out


def test_runs_of_different_configs_or_models_are_an_error_naming_what_differs(tmp_path, steps, capsys):
    ref = _run(_config(tmp_path), tmp_path / "runs")
    other = tmp_path / "other"
    shutil.copytree(ref, other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["model"]["id"] = "random:tiny-qwen2"
    cfg["workload"]["max_new_tokens"] = 8
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match=r"different configs or models: model.id \('random:tiny-qwen2' vs "
                                        r"'random:tiny-llama'\); workload.max_new_tokens \(8 vs 4\)"):
        compare_dirs(other, ref)
    assert main(["compare", str(other), "--against", str(ref), "--fail-on-regression"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.id" in err and "Traceback" not in err

    limited = tmp_path / "limited"
    shutil.copytree(ref, limited)
    summary = json.loads((limited / "summary.json").read_text())
    summary["arms"]["b"]["n_requests"] = 4
    (limited / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UserError, match=r"arms.b requests \(4 vs 16; --limit\?\)"):
        compare_dirs(limited, ref)


def test_tails_with_too_few_values_are_not_gated():
    from testbed.compare import gated_keys
    row = {"n_ok": 24, "output_tokens_mean": 48}
    for k in ("ttft_ms_p50_vs_baseline", "ttft_ms_p90_vs_baseline", "ttft_ms_p99_vs_baseline", "itl_ms_p99_vs_baseline"):
        row.update({k: 1.0, k + "_ci_low": 0.9, k + "_ci_high": 1.1})
    assert gated_keys(row) == ["ttft_ms_p50_vs_baseline", "itl_ms_p99_vs_baseline"]    # 24 TTFTs, ~1,100 ITL gaps


RERUNS = sorted(p for p in (Path(__file__).resolve().parent.parent / "docs" / "gate" / "runs").iterdir())


def test_every_pair_of_unchanged_quickstart_reruns_passes_which_the_intervals_alone_do_not():
    assert len(RERUNS) >= 7
    ci_alone = 0
    for ref, new in itertools.combinations(RERUNS, 2):
        found, checked, _ = compare_dirs(new, ref)
        assert checked == 52 and not [m for m in found if m.gated], [m.line() for m in found]
        ci_alone += bool(compare_dirs(new, ref, tolerance=0.0)[0])
    assert ci_alone >= 10                  # 15 of the 21 pairs moved an interval (docs/gate.md)


def _shift(row: dict, key: str, value: float, width: float = 0.03):
    row[key], row[key + "_ci_low"], row[key + "_ci_high"] = value, value * (1 - width), value * (1 + width)


def test_a_rerun_sized_shift_is_within_noise_and_a_tighter_tolerance_or_a_quality_move_fails(tmp_path, capsys):
    ref, new = RERUNS[0].parent / "20261202T041049Z-1f898f3", tmp_path / "new"     # paged x3.88 [3.78, 4.04]
    shutil.copytree(ref, new)
    summary = json.loads((new / "summary.json").read_text())
    b8, paged = summary["arms"]["batch8"], summary["arms"]["paged"]
    _shift(paged, "output_throughput_vs_baseline", paged["output_throughput_vs_baseline"] / 1.22)  # 22% slower
    _shift(b8, "tpot_ms_mean_vs_baseline", b8["tpot_ms_mean_vs_baseline"] * 1.2)                 # 20% slower
    _shift(b8, "goodput_vs_baseline", 3.0)                                       # a threshold metric jumps x3+
    (new / "summary.json").write_text(json.dumps(summary))

    found, _, _ = compare_dirs(new, ref)
    assert {(m.arm, m.metric) for m in found} == {("paged", "output_throughput_vs_baseline"),
                                                  ("batch8", "tpot_ms_mean_vs_baseline"),
                                                  ("batch8", "goodput_vs_baseline")}
    assert not [m for m in found if m.gated] and 0.19 < min(m.change for m in found) < 0.23
    assert main(["compare", str(new), "--against", str(ref), "--fail-on-regression"]) == 0
    out = capsys.readouterr().out
    assert "within noise (beyond the CI, under the tolerance): paged: output_throughput_vs_baseline" in out
    assert "not gated (a share under the SLO): batch8: goodput_vs_baseline" in out

    assert main(["compare", str(new), "--against", str(ref), "--fail-on-regression", "--tolerance", "0.1"]) == 1
    out = capsys.readouterr().out
    assert "moved beyond its 95% CI: paged: output_throughput_vs_baseline" in out and "(worse, 22% change" in out
    assert "moved beyond its 95% CI: batch8: tpot_ms_mean_vs_baseline" in out
    assert "not gated (a share under the SLO): batch8: goodput_vs_baseline" in out   # --tolerance leaves it out

    _shift(paged, "quality_accuracy_diff_vs_baseline", -0.1)    # quality is deterministic: any move counts
    paged["quality_accuracy_diff_vs_baseline_ci_low"], paged["quality_accuracy_diff_vs_baseline_ci_high"] = -0.2, -0.05
    (new / "summary.json").write_text(json.dumps(summary))
    assert main(["compare", str(new), "--against", str(ref), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "moved beyond its 95% CI: paged: quality_accuracy_diff_vs_baseline" in out and "(worse, 10% change, tolerance 0%)" in out


@pytest.mark.parametrize("bare", ["new", "ref"])
def test_a_run_without_intervals_is_named_whichever_side_it_is(tmp_path, bare):
    """An older run's summary has no intervals; the error names that run, the new one as well as the reference."""
    new, ref = tmp_path / "new", tmp_path / "ref"
    shutil.copytree(RERUNS[0], new)
    shutil.copytree(RERUNS[1], ref)
    summary = json.loads((tmp_path / bare / "summary.json").read_text())
    summary["arms"] = {a: {k: v for k, v in row.items() if "_ci_" not in k} for a, row in summary["arms"].items()}
    (tmp_path / bare / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UserError) as e:
        compare_dirs(new, ref)
    assert e.value.message.startswith(f"{tmp_path / bare}: no metric carries a confidence interval")


@pytest.mark.parametrize("side", ["new", "ref"])
def test_an_incomplete_run_is_refused_not_gated(tmp_path, side, capsys):
    """A run stopped part way has fewer requests: it used to read as another config (--limit?) or pass the gate."""
    new, ref = tmp_path / "new", tmp_path / "ref"
    shutil.copytree(RERUNS[0], new)
    shutil.copytree(RERUNS[1], ref)
    summary = json.loads((tmp_path / side / "summary.json").read_text())
    (tmp_path / side / "summary.json").write_text(json.dumps({**summary, "incomplete": True}))
    assert main(["compare", str(new), "--against", str(ref)]) == 2
    assert f"{tmp_path / side}: an incomplete run" in capsys.readouterr().err


def test_tolerance_families_and_the_override():
    assert tolerance_for("itl_ms_p90_vs_baseline") == tolerance_for("tpot_ms_mean_vs_baseline") == TOLERANCE["itl_ms"]
    assert tolerance_for("output_throughput_vs_baseline") == tolerance_for("peak_memory_mb_vs_baseline") == 0.35
    assert tolerance_for("goodput_vs_baseline") is None and tolerance_for("quality_f1") == 0.0
    assert tolerance_for("ttft_ms_p50_vs_baseline", 0.1) == 0.1 and tolerance_for("itl_ms_p50_vs_baseline", 0.1) == 0.1
    assert tolerance_for("goodput_vs_baseline", 0.1) is None and tolerance_for("match_rate_vs_baseline", 0.1) == 0.0
    with pytest.raises(SystemExit) as e:
        main(["compare", "x", "--against", "y", "--tolerance", "-0.1"])
    assert e.value.code == 2


def _edit(run: Path, name: str, change) -> None:
    data = json.loads((run / name).read_text())
    change(data)
    (run / name).write_text(json.dumps(data))


def test_another_machine_is_a_note_speed_moves_pass_and_quality_still_fails(tmp_path, capsys):
    ref, new = RERUNS[0].parent / "20261202T041049Z-1f898f3", tmp_path / "new"
    shutil.copytree(ref, new)
    _edit(new, "summary.json", lambda s: _shift(s["arms"]["paged"], "output_throughput_vs_baseline", 1.9))  # 3.88
    args = ["compare", str(new), "--against", str(ref), "--fail-on-regression"]
    assert main(args) == 1                                        # x0.49 on the same machine fails
    assert "note: " not in capsys.readouterr().out

    _edit(new, "env.json", lambda e: e.update(cpu_model="Intel(R) Xeon(R) Platinum 8480+", cpu_count=16))
    assert main(args) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith(
        "note: another machine than the reference's: cpu_model ('Intel(R) Xeon(R) Platinum 8480+' vs 'AMD EPYC'); "
        "cpu_count (16 vs 2) (new vs reference): speed and memory moves are shown, not gated; quality is.")
    assert "not gated, another machine (beyond the tolerance): paged: output_throughput_vs_baseline" in out
    assert json.loads(out.splitlines()[-1])["notes"] == notes

    _edit(new, "summary.json", lambda s: _shift(s["arms"]["paged"], "quality_accuracy_diff_vs_baseline", -0.1))
    assert main(args) == 1                                        # quality fails on any machine
    assert "moved beyond its 95% CI: paged: quality_accuracy_diff_vs_baseline" in capsys.readouterr().out


def test_other_versions_are_a_note_and_still_gated_an_unrecorded_value_is_no_difference(tmp_path, capsys):
    ref, new = RERUNS[0].parent / "20261202T041049Z-1f898f3", tmp_path / "new"
    shutil.copytree(ref, new)
    _edit(new, "summary.json", lambda s: _shift(s["arms"]["paged"], "output_throughput_vs_baseline", 1.9))
    _edit(new, "env.json", lambda e: e.update(torch="2.14.0+cpu", cpu_model=None))    # a failed CPU probe
    assert env_differences(new, ref, MACHINE) == []
    assert main(["compare", str(new), "--against", str(ref), "--fail-on-regression"]) == 1
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "torch ('2.14.0+cpu' vs '2.13.0+cpu')" in notes[0] and "still gated" in notes[0]

    _edit(new, "env.json", lambda e: e.update(device="cuda"))      # another device is another experiment
    with pytest.raises(UserError, match=r"device \('cuda' vs 'cpu'\)"):
        compare_dirs(new, ref)
