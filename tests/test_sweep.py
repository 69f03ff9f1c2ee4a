"""Rate sweeps: expansion into per-rate arrival configs, curve building, the plot, and a tiny sweep end to end."""
import json
import math
import textwrap

import pytest

from testbed.config import load_config
from testbed.report.sweep_plot import sweep_plot
from testbed.runner import Experiment
from testbed.workloads.sweep import (curve_points, curves_as_json, curves_from_json, expand_sweep, sweep_metrics,
                                     sweep_summary)


def test_expand_sorts_rates_dedups_and_maps_inf_to_offline():
    runs = expand_sweep({"kind": "sweep", "rates": [4, 1, "inf", 1], "burstiness": 0.5})
    assert [r for r, _ in runs] == [1.0, 4.0, math.inf]
    assert runs[0][1] == {"kind": "poisson", "rate": 1.0, "burstiness": 0.5}
    assert runs[-1][1] == {"kind": "offline"}


@pytest.mark.parametrize("rates", [[], [0], [-2]])
def test_bad_rates_are_rejected(rates):
    with pytest.raises(ValueError, match="rates"):
        expand_sweep({"kind": "sweep", "rates": rates})


def per_rate():
    return {2.0: {"hf": {"output_throughput": 20, "goodput": 1.5, "ttft_ms_p50": 300},
                  "paged": {"output_throughput": 25, "goodput": 1.9, "ttft_ms_p50": 120}},
            1.0: {"hf": {"output_throughput": 10, "goodput": 1.0, "ttft_ms_p50": 100},
                  "paged": {"output_throughput": 10, "goodput": 1.0, "ttft_ms_p50": 90}},
            math.inf: {"hf": {"output_throughput": 30, "goodput": 0.2, "ttft_ms_p50": 9000},
                       "paged": {"output_throughput": 60, "ttft_ms_p50": 2000}}}


def test_curves_are_per_arm_in_rate_order_with_missing_metrics_as_none():
    curves = curve_points(per_rate())
    assert [p.rate for p in curves["hf"]] == [1.0, 2.0, math.inf]
    assert [p.output_throughput for p in curves["paged"]] == [10, 25, 60]
    assert curves["paged"][-1].goodput is None and curves["hf"][0].e2el_ms_p50 is None
    assert sweep_metrics(curves["paged"]) == {"goodput_max": 1.9, "rate_at_goodput_max": 2.0,
                                              "output_throughput_max": 60}
    assert curves_as_json(curves)["hf"][-1]["rate"] == "inf"
    assert curves_from_json(curves_as_json(curves)) == curves


def test_sweep_summary_labels_rates_for_json():
    out = sweep_summary(per_rate())
    assert out["rates"] == ["1", "2", "inf"]
    assert out["best"]["hf"] == {"goodput_max": 1.5, "rate_at_goodput_max": "2", "output_throughput_max": 30}
    json.dumps(out, allow_nan=False)          # no Infinity in summary.json


def test_plot_draws_a_latency_line_per_arm_and_metric_and_goodput_where_measured(tmp_path, monkeypatch):
    from matplotlib import pyplot as plt
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)         # keep the figure to read back what was drawn
    path = sweep_plot(curve_points(per_rate()), tmp_path / "plots" / "sweep.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    left, right = figures[0].axes
    assert [line.get_label() for line in left.lines] == ["hf TTFT p50", "paged TTFT p50"]   # no E2EL given
    assert list(left.lines[1].get_xdata()) == [10, 25, 60] and list(left.lines[1].get_ydata()) == [90, 120, 2000]
    goodput = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in right.lines}
    assert goodput["hf"] == ([1.0, 2.0, 4.0], [1.0, 1.5, 0.2])      # "inf" drawn at twice the largest rate
    assert goodput["paged"] == ([1.0, 2.0], [1.0, 1.9])             # no goodput at inf: not drawn there


SWEEP = """
name: tinysweep
model: {id: random:tiny-llama}
threads: 1
workload: {dataset: golden/lookup, limit: 3, max_new_tokens: 6, warmup: 0, arrival: {kind: sweep, rates: [inf, 40]}}
sampling: {temperature: 0}
baseline: static
arms:
  static: {engine: hf, batch_size: 2}
  paged: {engine: paged, kv_budget_tokens: 4096}
slo: {ttft_ms: 600000}
"""


def test_tiny_sweep_runs_each_arm_per_rate_and_reports_the_curves(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(SWEEP))
    exp = Experiment(load_config(path, device="cpu"), progress=False)
    run_dir = exp.run(tmp_path / "out")
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert len(records) == 3 * 2 * 2                                       # items x rates x arms
    assert {(r["arm"], r["rate"]) for r in records} == {(a, q) for a in ("static", "paged") for q in ("40", "inf")}
    ids = [r["request_id"] for r in records if r["arm"] == "paged"]
    assert len(set(ids)) == 6 and all(i.endswith(("#q40", "#qinf")) for i in ids)
    assert all(r["match_baseline"] for r in records if r["arm"] == "paged")    # compared at the same rate

    summary = json.loads((run_dir / "summary.json").read_text())
    sweep = summary["sweep"]
    assert sweep["rates"] == ["40", "inf"] and list(sweep["curves"]) == ["static", "paged"]
    for arm, points in sweep["curves"].items():
        assert [p["rate"] for p in points] == ["40", "inf"]
        assert all(p["n_ok"] == 3 and p["output_throughput"] > 0 and p["goodput"] > 0 for p in points)
        assert all(p["ttft_ms_p50"] <= p["ttft_ms_p90"] and p["itl_ms_p90"] is not None for p in points)
    assert summary["arms"]["paged"]["n_requests"] == 6                       # comparison rows pool the rates
    assert any("pools all rates" in n for n in summary["notes"])

    report = (run_dir / "report.md").read_text()
    assert "## Rate sweep" in report and "| paged  | inf" in report
    assert "plots/throughput_vs_latency.png" in report
    assert (run_dir / "plots" / "throughput_vs_latency.png").read_bytes()[:4] == b"\x89PNG"
    assert "Rate sweep</h2>" in (run_dir / "report.html").read_text()
