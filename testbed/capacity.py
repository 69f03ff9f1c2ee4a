"""Capacity search: the highest offered rate at which an arm still meets the SLOs for `target` of its requests.

    workload: {arrival: {kind: slo_search, rates: [0.25, 8], steps: 6, target: 0.9}}
    slo: {ttft_ms: 3000, tpot_ms: 300}

Each probe is a full Poisson run of the arm at one rate (the runner's `_probe`). `bisection` is the
search as a generator, so `Searches.lockstep` can run every arm's and repeat's search in lockstep (one
probe each per round): drift in the machine's speed over the run then lands on all of them alike, where
searches run one after another each met a different machine (docs/capacity_cpu.md). The high end is
probed first: if the arm meets the SLOs there, that end is the answer (the capacity lies beyond the
bracket). Then `steps` bisections halve the interval [highest rate that met, lowest rate that
missed] in log space (rates span orders of magnitude), starting from [low, high]; the bisection's
answer is the highest rate measured to meet. The low end is probed last and only when no other
probe met (if it misses too there is no capacity in the bracket): it is the slowest probe (n/low
seconds) and, when a higher probe met, says nothing the answer needs. Attainment
counts every request sent: a failed request misses.

Beside it, `rate_at_target` reads the answer from every probe rather than from one pass/fail: the
probes' attainments are fitted with a non-increasing (isotonic) curve in the rate, and the rate is
where that fit crosses the target, interpolated linearly in log rate between the two fitted points
that bracket it. Why: attainment falls with the offered rate (the same arrival schedule, compressed,
queues at least as long), so a rise between probes is noise; the isotonic fit is the least-squares
curve under that one assumption and no assumed shape; the log scale is the bisection's own. The last
probe that met is quantised to the bisection's grid and flips with one probe's noise on the target
line; the crossing moves only as far as that noise moves the fit. Every probe's runs stay in the run (records carry
`rate`), so the sweep table and throughput-vs-latency plot show each arm's curve too; this
module adds summary["capacity"] and plots/capacity_<arm>.png (attainment vs rate, the target
line and the rate found).
"""
import math
from pathlib import Path
from typing import Callable, Generator

import numpy as np

from testbed.metrics.latency import meets_slo


def attainment(records: list[dict], slo) -> float:
    """Share of requests that completed and met every configured SLO."""
    return sum(meets_slo(r, slo) for r in records) / len(records) if records else 0.0


def bisection(low: float, high: float, steps: int, target: float
              ) -> Generator[float, float, tuple[float | None, list[tuple[float, float]]]]:
    """The search as a generator, so several can run in lockstep: it yields each rate to probe and is
    sent that probe's attainment; it returns (highest rate measured to meet `target`, or None; every
    (rate, attainment) probed, in order)."""
    points: list[tuple[float, float]] = []

    def met(rate: float, share: float) -> bool:
        points.append((rate, share))
        return share >= target

    if met(high, (yield high)):
        return high, points
    good, bad, found = low, high, False
    for _ in range(steps):
        mid = math.sqrt(good * bad)
        if met(mid, (yield mid)):
            good, found = mid, True
        else:
            bad = mid
    if not found and not met(low, (yield low)):
        return None, points
    return good, points


class Searches:
    """Several bisections stepped one probe at a time, one after another or in lockstep: `pending[key]` is
    a running search's next rate, `done[key]` a finished search's (rate found, probes)."""

    def __init__(self, keys: list, low: float, high: float, steps: int, target: float):
        self.low, self.high, self.target = low, high, target
        self._runs = {key: bisection(low, high, steps, target) for key in keys}
        self.pending = {key: next(run) for key, run in self._runs.items()}
        self.done: dict = {}

    def probe(self, key, measure: Callable[[object, float], float]) -> None:
        """`measure(key, rate)` at `key`'s next rate steps its search; a search that ends moves to `done`."""
        try:
            self.pending[key] = self._runs[key].send(measure(key, self.pending[key]))
        except StopIteration as end:
            self.done[key] = end.value
            del self.pending[key]

    def one_by_one(self, measure: Callable[[object, float], float],
                   finished: Callable[[object], None] = lambda key: None) -> None:
        """Each search to its end, in key order; `finished(key)` after each (the runner frees its engine)."""
        for key in list(self.pending):
            while key in self.pending:
                self.probe(key, measure)
            finished(key)

    def lockstep(self, measure: Callable[[object, float], float], round_order: Callable[[int], list]) -> None:
        """Round k probes every running search once, in the order `round_order(k)` lists their keys, so
        drift over the run lands on every search alike."""
        k = 0
        while self.pending:
            for key in round_order(k):
                if key in self.pending:
                    self.probe(key, measure)
            k += 1

    def entries(self) -> dict:
        """capacity_entry of every finished search, in key order (a run stopped early keeps these)."""
        return {key: capacity_entry(*self.done[key], self.target, self.low, self.high)
                for key in self._runs if key in self.done}


def bisect_rate(measure: Callable[[float], float], low: float, high: float, steps: int,
                target: float) -> tuple[float | None, list[tuple[float, float]]]:
    """One search driven to its end: `measure(rate)` gives each probe's attainment."""
    search = Searches([0], low, high, steps, target)
    search.one_by_one(lambda _, rate: measure(rate))
    return search.done[0]


def monotone_fit(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(rates ascending, attainment fitted non-increasing in the rate) for (rate, attainment) probes."""
    from sklearn.isotonic import IsotonicRegression
    pts = sorted(points)
    rates = np.array([r for r, _ in pts], dtype=float)
    fit = IsotonicRegression(increasing=False).fit_transform(rates, [a for _, a in pts])
    return rates, fit


def crossing_rate(points: list[tuple[float, float]], target: float) -> float | None:
    """The rate where the monotone fit of the probes crosses `target` (log-rate interpolation), or None
    when the fit stays on one side of it: met at every probe, or missed at every probe."""
    if not points:
        return None
    rates, fit = monotone_fit(points)
    if fit[0] < target or fit[-1] >= target:
        return None
    i = int(np.nonzero(fit >= target)[0][-1])          # last fitted point meeting; fit[i+1] < target <= fit[i]
    share = (fit[i] - target) / (fit[i] - fit[i + 1])
    return float(math.exp(math.log(rates[i]) + share * (math.log(rates[i + 1]) - math.log(rates[i]))))


def capacity_entry(found: float | None, points: list[tuple[float, float]], target: float, low: float,
                   high: float) -> dict:
    entry = {"max_rate": found, "rate_at_target": crossing_rate(points, target), "target": target,
             "bracket": [low, high], "points": [{"rate": r, "attainment": a} for r, a in points]}
    if found == high:
        entry["note"] = "met the SLOs at the top of the bracket: the capacity is at least this; raise rates[1]"
    elif found is None:
        entry["note"] = "missed the SLOs at the bottom of the bracket: lower rates[0]"
    return entry


def capacity_summary(searches: dict[str, list[dict]]) -> dict:
    """summary["capacity"]: per arm, the rate found per repeat and each search's probes."""
    return {arm: {"max_rate_per_repeat": [s["max_rate"] for s in runs],
                  "rate_at_target_per_repeat": [s.get("rate_at_target") for s in runs],
                  "target": runs[0]["target"], "searches": runs} for arm, runs in searches.items()}


def capacity_plot(arm: str, entry: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from testbed.report.plots import _save as save_figure     # the report's one way to write a PNG
    pts = sorted((p["rate"], p["attainment"]) for p in entry["points"])
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot([r for r, _ in pts], [a for _, a in pts], "o", label="share meeting every SLO, per probe")
    rates, fit = monotone_fit(pts)
    ax.plot(rates, fit, "-", color="C0", alpha=0.6, label="monotone fit")
    ax.axhline(entry["target"], color="grey", ls="--", label=f"target {entry['target']:.0%}")
    if entry["max_rate"] is not None:
        ax.axvline(entry["max_rate"], color="C2", ls=":", label=f"last probe met {entry['max_rate']:.3g} req/s")
    if entry.get("rate_at_target") is not None:
        ax.axvline(entry["rate_at_target"], color="C3", ls="-.",
                   label=f"fit crosses target {entry['rate_at_target']:.3g} req/s")
    ax.set(xscale="log", xlabel="offered rate (requests/s)", ylabel="SLO attainment", ylim=(-0.02, 1.02),
           title=f"{arm}: SLO search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)
