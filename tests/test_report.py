"""Run-directory writer, tables, plots, HTML and cross-run comparison; the result passes the contract checker."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from testbed.cli import main
from testbed.env import collect_env
from testbed.errors import UserError
from testbed.metrics.summary import add_ratios, by_category, summarize_arm
from testbed.report import RunWriter, compare_runs, read_records, read_summary
from testbed.report.tables import comparison_table

CHECKER = Path(__file__).resolve().parents[1].parent / "shared" / "tools" / "check_results.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(arm, i, speed):
    times = [0.1 * i + 0.05 * speed * k + 0.2 for k in range(1, 5)]
    return {"arm": arm, "repeat": 0, "request_id": f"r{i}", "item_id": f"q{i}", "category": ["lookup", "json"][i % 2],
            "model": "tiny", "status": "ok", "error": None, "finish_reason": "length", "prompt_tokens": 20 + i,
            "output_tokens": 4, "arrival_s": 0.1 * i, "first_token_s": times[0], "finish_s": times[-1],
            "token_times_s": times, "output_text": "Paris", "output_ids": [1, 2, 3, 4], "answers": ["Paris"],
            "scorer": "contains", "scores": {"exact": 1.0, "f1": 1.0, "contains": 1.0}, "score": 1.0,
            "correct": i != 3, "match_baseline": True if arm != "plain" else None, "first_divergence": None,
            "stats": {}}


def build_summary(records):
    arms = {}
    for arm, wall in (("plain", 2.0), ("fast", 1.0)):
        recs = [r for r in records if r["arm"] == arm]
        arms[arm] = summarize_arm(recs, wall_s=wall, engine_stats={"kv_waste_pct": 1.0} if arm == "fast" else {},
                                  memory={"peak_memory_mb": 300.0}, usd_per_hour=2.49, slo=None)
    add_ratios(arms, "plain")
    cats = {a: by_category([r for r in records if r["arm"] == a]) for a in arms}
    return {"name": "unit", "baseline": "plain", "incomplete": False, "arms": arms, "by_category": cats,
            "notes": ["synthetic records <b>escaped</b>"]}


@pytest.fixture
def run_dir(tmp_path):
    records = [record(arm, i, speed) for arm, speed in (("plain", 2), ("fast", 1)) for i in range(6)]
    writer = RunWriter(tmp_path / "unit-20250101T000000Z")
    writer.write_config({"name": "unit", "baseline": "plain", "arms": {"plain": {"engine": "hf"}}, "path": Path("x")})
    writer.write_env(collect_env())
    for r in records:
        writer.append_record(r)
    summary = build_summary(records)
    writer.write_summary(summary)
    writer.write_report(summary, records)
    return writer.run_dir


def test_run_dir_passes_the_contract_checker(run_dir):
    if not CHECKER.is_file():
        pytest.skip(f"contract checker not found at {CHECKER}")
    res = subprocess.run([sys.executable, str(CHECKER), "contract", str(run_dir)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_files_round_trip(run_dir):
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["arms"] == {"plain": {"engine": "hf"}}
    env = json.loads((run_dir / "env.json").read_text())
    assert env["python"] and "torch" in env and "git_sha" in env
    records = read_records(run_dir)
    assert len(records) == 12 and records[0]["token_times_s"] == pytest.approx([0.3, 0.4, 0.5, 0.6])
    summary = read_summary(run_dir)
    assert summary["arms"]["fast"]["output_throughput_vs_baseline"] == pytest.approx(2.0)
    assert summary["arms"]["fast"]["match_rate_vs_baseline"] == 1.0
    csv = pd.read_csv(run_dir / "summary.csv", index_col="arm")
    assert list(csv.index) == ["plain", "fast"] and csv.loc["fast", "n_requests"] == 6
    assert pd.isna(csv.loc["plain", "kv_waste_pct"])          # absent, not zero


def test_interrupted_jsonl_keeps_complete_lines(run_dir):
    with open(run_dir / "requests.jsonl", "a") as f:
        f.write('{"arm": "fast", "request_')                    # a torn last write
    assert len(read_records(run_dir)) == 12


def test_report_html_is_self_contained(run_dir):
    page = (run_dir / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "http://" not in page and "https://" not in page
    assert "vllm bench serve" in page and "&lt;b&gt;escaped" in page


def test_plots_are_valid_pngs(run_dir):
    plots = sorted((run_dir / "plots").glob("*.png"))
    assert [p.name for p in plots] == ["latency_cdf_e2el.png", "latency_cdf_ttft.png",
                                       "output_throughput.png", "quality_vs_cost.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 2000 for p in plots)


def test_report_md_has_table_with_ratios(run_dir):
    md = (run_dir / "report.md").read_text()
    assert "| plain (baseline)" in md and "(×2.00)" in md and "## By category" in md
    assert "](plots/latency_cdf_e2el.png)" in md


def test_comparison_table_shows_only_metrics_some_arm_has(run_dir):
    table = comparison_table(read_summary(run_dir))
    assert list(table.index) == ["plain (baseline)", "fast"]
    assert table.loc["fast", "KV waste %"] == "1.00" and table.loc["plain (baseline)", "KV waste %"] == ""
    assert "spec accept" not in table.columns and "goodput req/s" not in table.columns


def test_compare_runs(run_dir, tmp_path):
    df = compare_runs([run_dir, run_dir])
    assert len(df) == 4 and df.index.is_unique
    assert df.loc[(run_dir.name, "plain"), "baseline"] and not df.loc[(f"{run_dir.name} (2)", "fast"), "baseline"]
    assert df.loc[(run_dir.name, "fast"), "output_throughput_vs_baseline"] == pytest.approx(2.0)
    with pytest.raises(UserError, match="nowhere"):
        compare_runs([tmp_path / "nowhere"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    with pytest.raises(UserError, match="bad"):
        compare_runs([run_dir, bad])
    (bad / "summary.json").write_text('{"name": "x"}')
    with pytest.raises(UserError, match="arms"):
        compare_runs([bad])


SUMMARY_DAMAGE = {       # what a damaged summary.json, or one from another testbed version, may hold
    "arm row not an object": (lambda s: s["arms"].update(plain=3), "arms.plain: is a number, expected object"),
    "nested metrics": (lambda s: s["arms"].update(plain={"metrics": s["arms"]["plain"]}),
                       "arms.plain.metrics: is an object"),
    "null interval": (lambda s: s["arms"]["fast"].update(output_throughput_vs_baseline_ci_low=None),
                      "arms.fast.output_throughput_vs_baseline_ci_low: is null, expected number"),
    "count as text": (lambda s: s["arms"]["fast"].update(n_requests="6"), "arms.fast.n_requests: is a string"),
    "incomplete as text": (lambda s: s.update(incomplete="false"), "incomplete: is a string, expected boolean"),
    "no incomplete flag": (lambda s: s.pop("incomplete"), "'incomplete' is a required property"),
    "runs not a list": (lambda s: s.update(runs="x"), "runs: is a string, expected array"),
    "a pass without its arm": (lambda s: s.update(runs=[{"repeat": 0, "rate": None, "wall_s": 1.0}]),
                               "runs.0: 'arm' is a required property"),
    "no arm ran": (lambda s: s.update(arms={}), "no arm finished a request")}


@pytest.mark.parametrize("case", SUMMARY_DAMAGE)
def test_a_damaged_summary_is_one_error_naming_the_field(run_dir, case, capsys):
    damage, says = SUMMARY_DAMAGE[case]
    summary = json.loads((run_dir / "summary.json").read_text())
    damage(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir / 'summary.json'}: {says}" in err and "fix:" in err


def test_a_summary_with_a_utf8_bom_reads(run_dir):
    (run_dir / "summary.json").write_text("\ufeff" + (run_dir / "summary.json").read_text())
    assert read_summary(run_dir)["name"] == "unit"


RECORD_DAMAGE = {       # each gives the damaged record
    "no arm": (lambda r: {k: v for k, v in r.items() if k != "arm"}, "'arm' is a required property"),
    "no arrival": (lambda r: {k: v for k, v in r.items() if k != "arrival_s"}, "'arrival_s' is a required property"),
    "times as text": (lambda r: {**r, "token_times_s": "abc"}, "token_times_s: is a string, expected array or null"),
    "tokens as text": (lambda r: {**r, "output_tokens": "4"}, "output_tokens: is a string, expected integer or null"),
    "not an object": (lambda r: [r], "is an array, expected object")}


@pytest.mark.parametrize("case", RECORD_DAMAGE)
def test_a_damaged_record_is_one_error_naming_its_line(run_dir, case):
    damage, says = RECORD_DAMAGE[case]
    lines = (run_dir / "requests.jsonl").read_text().splitlines()
    lines[2] = json.dumps(damage(json.loads(lines[2])))
    (run_dir / "requests.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as e:
        read_records(run_dir)
    assert e.value.message.startswith(f"{run_dir / 'requests.jsonl'}:3: {says}") and e.value.fix
