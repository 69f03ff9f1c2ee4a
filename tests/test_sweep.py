"""Rate sweeps: expansion into per-rate arrival configs, curve building, and the plot."""
import math

import pytest

from testbed.report.sweep_plot import sweep_plot
from testbed.workloads.sweep import curve_points, curves_as_json, expand_sweep, sweep_metrics


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


def test_plot_writes_a_png(tmp_path):
    path = sweep_plot(curve_points(per_rate()), tmp_path / "plots" / "sweep.png")
    assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"
