"""Report plots (matplotlib, Agg backend), saved under run_dir/plots/:

    latency_cdf_e2el.png, latency_cdf_ttft.png   one step-CDF line per arm, ok requests only
    quality_vs_cost.png                          cost per success (x) vs quality_accuracy (y), one point per arm
    output_throughput.png                        output tokens/s per arm, baseline first
    throughput_vs_latency.png                    rate sweeps only: one curve per arm (sweep_plot.py)
    routing_quality_vs_cost.png                  routed arms only: sweep curves, random line, oracle (testbed.routing.plot)

    paths = make_plots(summary, records, run_dir)
"""
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from testbed.metrics import latency  # noqa: E402
from testbed.report.sweep_plot import sweep_plot  # noqa: E402
from testbed.workloads.sweep import curves_from_json  # noqa: E402
from testbed.routing.plot import routing_plot  # noqa: E402

LATENCY_FNS = {"e2el": latency.e2el_ms, "ttft": latency.ttft_ms}


def _arm_order(summary: dict) -> list[str]:
    return sorted(summary["arms"], key=lambda a: a != summary.get("baseline"))


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def latency_cdf(records: list[dict], metric: str, path: Path, arms: list[str] | None = None) -> Path:
    """Empirical CDF of one latency (`e2el` or `ttft`, ms) per arm."""
    by_arm: dict[str, list[float]] = defaultdict(list)
    for r in records:
        value = LATENCY_FNS[metric](r) if latency.is_ok(r) else None
        if value is not None:
            by_arm[r["arm"]].append(value)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for arm in arms or sorted(by_arm):
        vals = np.sort(by_arm.get(arm, []))
        if vals.size:
            ax.step(vals, np.arange(1, vals.size + 1) / vals.size, where="post", label=arm)
    if not by_arm:
        _empty_note(ax, "no completed requests")
    else:
        ax.legend(fontsize="small")
    ax.set(xlabel=f"{metric.upper()} (ms)", ylabel="share of requests", title=f"{metric.upper()} CDF", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def quality_vs_cost(summary: dict, path: Path) -> Path:
    """One point per arm: cost per success (x) against quality_accuracy (y)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    points = [(a, m) for a, m in ((a, summary["arms"][a]) for a in _arm_order(summary))
              if "cost_per_success_usd" in m and "quality_accuracy" in m]
    for arm, m in points:
        ax.scatter(m["cost_per_success_usd"], m["quality_accuracy"], s=40)
        ax.annotate(arm, (m["cost_per_success_usd"], m["quality_accuracy"]), textcoords="offset points",
                    xytext=(5, 4), fontsize="small")
    if not points:
        _empty_note(ax, "no arm has a successful request")
    ax.set(xlabel="cost per success (USD)", ylabel="quality accuracy", title="Quality vs cost", ylim=(-0.02, 1.05))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def throughput_bar(summary: dict, path: Path) -> Path:
    """Output tokens per second, one bar per arm."""
    arms = _arm_order(summary)
    values = [summary["arms"][a].get("output_throughput", 0.0) for a in arms]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(arms) + 2), 4.0))
    ax.bar(arms, values, color=["#888888" if a == summary.get("baseline") else "#3b75af" for a in arms])
    ax.set(ylabel="output tokens / s", title="Output throughput (grey: baseline)")
    ax.tick_params(axis="x", labelrotation=20)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def make_plots(summary: dict, records: list[dict], run_dir: str | Path) -> list[Path]:
    """Write every report plot to run_dir/plots/ and return their paths."""
    out = Path(run_dir) / "plots"
    arms = _arm_order(summary)
    paths = [latency_cdf(records, "e2el", out / "latency_cdf_e2el.png", arms),
             latency_cdf(records, "ttft", out / "latency_cdf_ttft.png", arms),
             quality_vs_cost(summary, out / "quality_vs_cost.png"),
             throughput_bar(summary, out / "output_throughput.png")]
    curves = (summary.get("sweep") or {}).get("curves")
    if curves:
        paths.insert(0, sweep_plot(curves_from_json(curves), out / "throughput_vs_latency.png",
                                   title=f"{summary.get('name', 'run')}: rate sweep"))
    routed = routing_plot(summary, out / "routing_quality_vs_cost.png")
    return paths + ([routed] if routed else [])
