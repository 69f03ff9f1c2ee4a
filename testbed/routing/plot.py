"""The quality-vs-cost plot of routed arms: each router's sweep curve and measured point, the tiers,
the random line between the cheapest and strongest tier, the oracle point, and a dotted line at 95%
of the strongest tier's quality.

    path = routing_plot(summary, run_dir / "plots" / "routing_quality_vs_cost.png")   # None without routed arms

Cost is the mean USD per request over the labelled items (the sweep) or the arm's run (the point).
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


def _routed(summary: dict) -> dict[str, dict]:
    return {arm: d["routing"] for arm, d in (summary.get("details") or {}).items() if "routing" in d}


def routing_plot(summary: dict, path: Path) -> Path | None:
    routed = _routed(summary)
    if not routed:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    first = next(iter(routed.values()))
    n = len(first["outcomes"]["item_ids"]) or 1
    tiers = first["tier_points"]
    weak, strong = tiers[0], tiers[-1]
    ax.plot([weak["cost_usd"] / n, strong["cost_usd"] / n], [weak["quality"], strong["quality"]], "--",
            color="grey", label="random")
    for t in tiers:
        ax.scatter(t["cost_usd"] / n, t["quality"], marker="s", color="black", zorder=3)
        ax.annotate(f"tier {t['tier']}", (t["cost_usd"] / n, t["quality"]), xytext=(5, -10),
                    textcoords="offset points", fontsize="small")
    ax.axhline(0.95 * strong["quality"], color="grey", lw=0.8, ls=":")
    ax.annotate("95% of the strongest tier", (weak["cost_usd"] / n, 0.95 * strong["quality"]), xytext=(0, 3),
                textcoords="offset points", fontsize="x-small", color="grey")
    o = first["oracle"]
    ax.scatter(o["cost_usd"] / n, o["quality"], marker="*", s=160, color="gold", edgecolor="black", zorder=3,
               label="oracle")
    for arm, d in routed.items():
        c = d["curve"]
        line, = ax.plot([v / n for v in c["cost_usd"]], c["quality"], label=f"{arm} ({d['router']})", alpha=0.8)
        p = d["operating_point"]
        ax.scatter(p["cost_usd"] / max(1, p["n"]), p["quality"], color=line.get_color(), edgecolor="black", zorder=4)
    ax.set(xlabel="cost per request (USD)", ylabel="quality accuracy",
           title="Routing: quality vs cost (curves: threshold sweep; dots: measured arms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
