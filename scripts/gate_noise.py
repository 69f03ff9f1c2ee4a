"""The regression gate's null distribution: every pair of unchanged reruns of one config, compared both ways
the gate can: the 95% intervals alone, and intervals plus the tolerance (testbed/compare.py).

    python scripts/gate_noise.py                      # the quickstart reruns in docs/gate/runs/
    python scripts/gate_noise.py RUN_DIR RUN_DIR ...  # any unchanged reruns of one config (3 or more)

Regime: no new measurement; it reads each run's summary.json. Per pair it prints how many intervals stopped
overlapping, how many of those also pass the default tolerance (which fail the gate), and the largest move.
Per tolerance family it prints the largest move over every pair (beyond the CI or not) and the pair standard
deviation of log(new/ref), sqrt(mean of log^2) over pairs and metrics: the defaults in TOLERANCE sit near
exp(4 sd). The last line is JSON.
"""
import itertools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from testbed.compare import Move, gated_keys, moves, tolerance_for
from testbed.metrics.ratio_ci import HIGH, LOW
from testbed.report.compare import read_summary

RUNS = Path(__file__).resolve().parent.parent / "docs" / "gate" / "runs"


def every_move(new: dict, ref: dict) -> list[Move]:
    """Every metric with an interval on both sides, whether or not the intervals overlap."""
    return [Move(arm, k, r[k], (r[k + LOW], r[k + HIGH]), n[k], (n[k + LOW], n[k + HIGH]), tolerance_for(k))
            for arm, r in ref["arms"].items() for n in [new["arms"][arm]] for k in gated_keys(r) if k + LOW in n]


def family(m: Move) -> str:
    if m.tolerance is None:
        return "goodput (not gated)"
    return "quality, match rate" if m.tolerance == 0 else f"tolerance {m.tolerance:.0%}"


def main(dirs: list[Path]) -> dict:
    runs = {d.name: read_summary(d) for d in dirs}
    pairs, spread = [], defaultdict(list)
    print(f"{'pair (reference / new)':52s} {'checked':>7s} {'beyond CI':>9s} {'fail gate':>9s}  "
          "largest gated-family move beyond the CI")
    for a, b in itertools.combinations(runs, 2):
        found, checked = moves(runs[b], runs[a])
        top = max((m for m in found if m.tolerance is not None), key=lambda m: m.change, default=None)
        gated = [m for m in found if m.gated]
        print(f"{a + ' / ' + b:52s} {checked:7d} {len(found):9d} {len(gated):9d}  "
              + (f"{top.arm}.{top.metric} {top.ref:.3g} -> {top.new:.3g} (+{top.change:.0%})" if top else "-"))
        pairs.append({"ref": a, "new": b, "checked": checked, "beyond_ci": len(found), "fail_gate": len(gated)})
        for m in every_move(runs[b], runs[a]):
            spread[family(m)].append(m)
    print(f"\n{'family':22s} {'values':>6s} {'pair sd(log)':>12s} {'exp(4 sd)':>9s}  largest move, every pair")
    fams = {}
    for name, ms in spread.items():
        sd = math.sqrt(sum(math.log1p(m.change) ** 2 for m in ms if math.isfinite(m.change)) / len(ms))
        top = max(ms, key=lambda m: m.change)
        print(f"{name:22s} {len(ms):6d} {sd:12.3f} {math.exp(4 * sd):9.2f}  +{top.change:.0%} {top.arm}.{top.metric}")
        fams[name] = {"largest_change": top.change, "largest": f"{top.arm}.{top.metric}", "pair_sd_log": sd}
    return {"runs": list(runs), "pairs": pairs, "families": fams}


if __name__ == "__main__":
    args = [Path(p) for p in sys.argv[1:]] or sorted(p for p in RUNS.iterdir() if p.is_dir())
    print(json.dumps(main(args)))
