"""The rate-sweep plot: throughput vs latency per arm, and goodput vs offered rate, in one figure.

    sweep_plot(curve_points(per_rate), run_dir / "plots" / "throughput_vs_latency.png", title="quickstart: rate sweep")

Left: achieved output tokens/s (x) against TTFT and E2EL p50 (y, log scale), one line per arm,
each point labelled with its offered rate. Right: goodput (requests/s meeting every SLO)
against offered rate, where an SLO is configured.
"""
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

from testbed.workloads.sweep import CurvePoint, rate_label  # noqa: E402


def _latency_panel(ax, curves: dict[str, list[CurvePoint]], metric: str, style: str) -> None:
    for i, (arm, pts) in enumerate(curves.items()):
        pts = [p for p in pts if p.output_throughput is not None and getattr(p, metric) is not None]
        if not pts:
            continue
        xs, ys = [p.output_throughput for p in pts], [getattr(p, metric) for p in pts]
        ax.plot(xs, ys, style, color=f"C{i}", label=f"{arm} {metric.split('_')[0].upper()} p50")
        for p, x, y in zip(pts, xs, ys):
            ax.annotate(rate_label(p.rate), (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))


def _goodput_panel(ax, curves: dict[str, list[CurvePoint]]) -> bool:
    drawn = False
    finite = [p.rate for pts in curves.values() for p in pts if not math.isinf(p.rate)]
    inf_x = max(finite) * 2 if finite else 1.0        # draw "inf" to the right of the largest rate
    for i, (arm, pts) in enumerate(curves.items()):
        pts = [p for p in pts if p.goodput is not None]
        if pts:
            ax.plot([inf_x if math.isinf(p.rate) else p.rate for p in pts], [p.goodput for p in pts],
                    "o-", color=f"C{i}", label=arm)
            drawn = True
    return drawn


def sweep_plot(curves: dict[str, list[CurvePoint]], path: Path, title: str = "rate sweep") -> Path:
    """Draw both panels and save to `path` (PNG); returns the path."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    _latency_panel(left, curves, "ttft_ms_p50", "o-")
    _latency_panel(left, curves, "e2el_ms_p50", "s--")
    left.set(xlabel="output throughput (tokens/s)", ylabel="latency (ms)", yscale="log",
             title="throughput vs latency (labels: offered req/s)")
    left.grid(alpha=0.3)
    if left.lines:
        left.legend(fontsize="small")
    if _goodput_panel(right, curves):
        right.legend(fontsize="small")
    else:
        right.text(0.5, 0.5, "no SLO configured: no goodput", ha="center", va="center",
                   transform=right.transAxes, color="grey")
    right.set(xlabel="offered rate (requests/s; rightmost = all at once)", ylabel="goodput (requests/s)",
              title="goodput at the SLOs")
    right.grid(alpha=0.3)
    fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
