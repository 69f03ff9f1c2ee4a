"""The regression gate: a new run against a reference run of the same config.

    python -m testbed compare results/quickstart-<UTC> --against results/reference/quickstart --fail-on-regression

    moves, checked, unchecked = compare_dirs(new_dir, ref_dir)   # tolerance=0.1: one threshold for every ratio
    # moves: [Move(arm="paged", metric="output_throughput_vs_baseline", ref=2.1, ref_ci=(1.9, 2.3),
    #               new=0.4, new_ci=(0.3, 0.5), tolerance=0.35)]: .change 4.25, .gated True, .worse True
    # checked: how many metrics had intervals on both sides; unchecked: those with a NaN ratio or interval
    # [{"arm": "paged", "metric": "tpot_ms_p50_vs_baseline", "why": "the new run's ratio and interval are NaN",
    #   "nan_in": ["new run"]}]; lost(unchecked): those NaN in the new run only, which fail --fail-on-regression

What is compared: every `_vs_baseline` ratio and difference, and every arm's quality scores, that carry a 95%
interval in both runs (testbed/metrics/ratio_ci.py); a latency percentile only when at least TAIL_VALUES
values lie beyond it (p90 needs 50 requests, p99 500). Ratios, not absolute figures: they are measured
against a baseline in the same run, so a machine that is uniformly faster or slower does not move them.

A metric *moved* when the two intervals do not overlap. The item bootstrap sees which items a run drew, not
how fast the machine was while one arm ran: unchanged quickstart reruns moved 0-7 of 52 intervals per pair,
by up to x1.46 (docs/gate.md). So a move fails the gate only when it is also larger than its family's
tolerance, a relative change (max(new/ref, ref/new) - 1) set above every unchanged pair's move
(asv's factor, pytest-benchmark's --benchmark-compare-fail): TOLERANCE, or one `tolerance` for all. Quality
and match rates are deterministic under greedy decoding, so any move of theirs counts. Goodput, requests
within the SLOs, is reported and never fails it: the latencies behind it are gated, and at an SLO it jumps
(quickstart's batch 8 shares one TTFT per batch of 8, at ~9-10 s against a 10 s SLO: 100%, 33% or 67% of
its requests met it in unchanged reruns). A slowed baseline moves every other arm's ratios up: either way counts.

A metric whose ratio or interval is NaN on either side (every comparison with NaN is false, so it used to pass
unseen) is not checked: listed as such, never passed; when every metric is, compare refuses.

The runs must be of the same config: the resolved config.yaml (fallbacks applied) must agree on every
key but output_dir and description, the device must be the same, and each arm must have run as many
requests; otherwise a UserError names what differs. A different machine (env.json's CPU model, core count,
threads, GPU) is a note, not an error: how arms scale against each other depends on the hardware (cores,
SIMD width, caches), and the tolerances were set on the reference's machine, so there speed and memory moves
are shown but never fail; quality still does. Different torch, transformers or Python versions are a note
too, and everything stays gated: a dependency that moves a ratio is a regression to look at.
"""
import math
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import UserError
from testbed.metrics.ratio_ci import HIGH, LOW
from testbed.report.compare import read_env, read_summary
from testbed.report.run_files import load_run_config

IGNORED = ("output_dir", "description")
HIGHER_BETTER = ("request_throughput", "output_throughput", "total_token_throughput", "goodput", "quality_",
                 "match_rate")
# Relative change a move beyond the CI must exceed to fail, per metric family (the first prefix that matches).
# Every pair of 7 unchanged quickstart reruns (docs/gate.md, scripts/gate_noise.py): per-token latency (TPOT,
# ITL) moved up to x1.46, the rest up to x1.20 beyond their intervals; a default is exp(4 sd) of log(new/ref)
# over those pairs (x1.60, x1.37), rounded. 0: any move counts; None: reported, never fails.
TOLERANCE = {"quality_": 0.0, "match_rate": 0.0, "goodput": None, "tpot_ms": 0.6, "itl_ms": 0.6, "": 0.35}
# env.json keys: the hardware (cpu_id and cpu_simd tell apart two CPUs sold under one name)
MACHINE = ("cpu_model", "cpu_id", "cpu_simd", "cpu_count", "threads", "gpu_name", "gpu_count")
VERSIONS = ("torch", "transformers", "python")


@dataclass
class Move:
    arm: str
    metric: str
    ref: float
    ref_ci: tuple[float, float]
    new: float
    new_ci: tuple[float, float]
    tolerance: float | None = 0.0
    other_machine: bool = False      # measured on another machine than the reference: only quality can fail

    @property
    def change(self) -> float:
        """Relative change, the same either way: x2 and x0.5 are both 1.0. Infinite when a side is 0 or below;
        a difference's (accuracy arm - baseline, around 0) is absolute: 0.1 is 10 points of accuracy."""
        if self.ref == self.new or "_diff_" in self.metric:
            return abs(self.new - self.ref)
        if self.ref <= 0 or self.new <= 0:
            return float("inf")
        return max(self.new / self.ref, self.ref / self.new) - 1

    @property
    def gated(self) -> bool:
        """Whether this move fails the gate: beyond the CI (every Move is) and beyond its tolerance; on another
        machine only a deterministic metric's (tolerance 0) can."""
        if self.tolerance is None or (self.other_machine and self.tolerance != 0):
            return False
        return self.tolerance == 0 or self.change > self.tolerance

    @property
    def worse(self) -> bool:
        """For the arm against its baseline: lower throughput/quality, or higher latency/memory."""
        return (self.new < self.ref) == self.metric.startswith(HIGHER_BETTER)

    def line(self) -> str:
        """One line saying whether the move fails the gate; one the tolerance lets through is said, not hidden."""
        if self.gated:
            verdict = "moved beyond its 95% CI"
        elif self.tolerance is None:
            verdict = "not gated (a share under the SLO)"
        elif self.other_machine:
            side = "beyond" if self.change > self.tolerance else "under"
            verdict = f"not gated, another machine ({side} the tolerance)"
        else:
            verdict = "within noise (beyond the CI, under the tolerance)"
        tol = "" if self.tolerance is None else f", tolerance {self.tolerance:.0%}"
        return (f"{verdict}: {self.arm}: {self.metric} {self.ref:.3g} [{self.ref_ci[0]:.3g}, {self.ref_ci[1]:.3g}]"
                f" -> {self.new:.3g} [{self.new_ci[0]:.3g}, {self.new_ci[1]:.3g}] "
                f"({'worse' if self.worse else 'better'}, {self.change:.0%} change{tol})")


def tolerance_for(metric: str, override: float | None = None) -> float | None:
    """The relative change `metric` must exceed beyond its CI to fail; `override` replaces every family's but
    quality's and match rates' (deterministic: any move counts) and goodput's (never gated)."""
    family = next(p for p in TOLERANCE if metric.startswith(p))
    if override is None or TOLERANCE[family] in (0.0, None):
        return TOLERANCE[family]
    return override


def _flat(d, prefix: str = "") -> dict[str, object]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, object] = {}
    for k, v in d.items():
        if k not in IGNORED or prefix:
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir}: no config.yaml", "give a run directory written by `testbed run` or `publish`")
    return load_run_config(path)


def env_differences(new_dir: str | Path, ref_dir: str | Path, keys: tuple[str, ...]) -> list[str]:
    """The env.json `keys` both runs recorded and that differ, "key (new vs reference)"; an unrecorded value (an
    older run, a failed probe) is not a difference."""
    a, b = read_env(new_dir), read_env(ref_dir)
    return [f"{k} ({a[k]!r} vs {b[k]!r})" for k in keys if a.get(k) is not None and b.get(k) is not None
            and a[k] != b[k]]


def env_recorded_once(new_dir: str | Path, ref_dir: str | Path, keys: tuple[str, ...]) -> list[str]:
    """The env.json `keys` one run recorded and the other did not (an older run), "key (missing in reference)"."""
    a, b = read_env(new_dir), read_env(ref_dir)
    return [f"{k} (missing in {'reference' if a.get(k) is not None else 'new run'})" for k in keys
            if (a.get(k) is None) != (b.get(k) is None)]


def env_notes(new_dir: str | Path, ref_dir: str | Path) -> list[str]:
    """One line per kind of environment difference that compare_dirs lets through: the machine, the versions."""
    notes = []
    if machine := env_differences(new_dir, ref_dir, MACHINE):
        notes.append(f"note: another machine than the reference's: {'; '.join(machine)} (new vs reference): speed "
                     "and memory moves are shown, not gated; quality is. To gate speed, publish a reference here")
    if one_sided := env_recorded_once(new_dir, ref_dir, ("cpu_id", "cpu_simd")):
        notes.append(f"note: {', '.join(one_sided)} recorded by one run only: only the CPU name and core count tell "
                     "the machines apart, and two CPU generations can share a name. To be sure, publish a reference "
                     "with `testbed publish` on this machine")
    if versions := env_differences(new_dir, ref_dir, VERSIONS):
        notes.append(f"note: other versions than the reference's: {'; '.join(versions)} (new vs reference): every "
                     "metric is still gated, as a version that moves a ratio is a regression too")
    return notes


def differences(new_dir: Path, ref_dir: Path, new: dict, ref: dict) -> list[str]:
    """What differs between the two runs' setups ("key (new vs reference)"): config keys, device, requests per arm."""
    a, b = _flat(_config(new_dir)), _flat(_config(ref_dir))
    diffs = [f"{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    devices = read_env(new_dir).get("device"), read_env(ref_dir).get("device")
    if devices[0] != devices[1]:
        diffs.append(f"device ({devices[0]!r} vs {devices[1]!r})")
    for arm in sorted(set(new["arms"]) & set(ref["arms"])):
        n, m = new["arms"][arm].get("n_requests"), ref["arms"][arm].get("n_requests")
        if n != m:
            diffs.append(f"arms.{arm} requests ({n} vs {m}; --limit?)")
    return diffs


TAIL_VALUES = 5      # a percentile is gated only with this many values beyond it


def tail_ok(row: dict, key: str) -> bool:
    """Whether a latency percentile has TAIL_VALUES values beyond it: with fewer, pNN is the top one or two
    requests, its bootstrap interval is unreliable (a resample's max), and one stray request would fail the gate."""
    pct = next((int(part[1:]) for part in key.split("_") if part[:1] == "p" and part[1:].isdigit()), None)
    if pct is None:
        return True
    n = row.get("n_ok", 0) * (max(1.0, row.get("output_tokens_mean", 1) - 1) if key.startswith("itl_") else 1)
    return n * (1 - pct / 100) >= TAIL_VALUES


def gated_keys(row: dict) -> list[str]:
    """The metrics of one arm's row that carry an interval: ratios, differences, quality scores; tails with data."""
    return [k for k in row if (k.endswith("_vs_baseline") or k.startswith("quality_")) and k + LOW in row
            and tail_ok(row, k)]


def _pairs(new: dict, ref: dict):
    """(arm, metric, reference row, new row) for every metric with an interval in both summaries."""
    for arm in ref["arms"]:
        r, n = ref["arms"][arm], new["arms"].get(arm, {})
        yield from ((arm, key, r, n) for key in gated_keys(r) if key + LOW in n)


def _nan_part(row: dict, key: str) -> str | None:
    """Which of a metric's value and interval is NaN (or not a number at all), or None where all are numbers:
    every comparison with NaN is False, so such a metric used to pass the gate unseen."""
    bad = [part for part, k in (("ratio", key), ("interval", key + LOW), ("interval", key + HIGH))
           if not isinstance(row.get(k), (int, float)) or math.isnan(row[k])]
    return " and ".join(dict.fromkeys(bad)) or None


def not_checked(new: dict, ref: dict) -> list[dict]:
    """The metrics with intervals in both runs that cannot be compared, a NaN on either side: {arm, metric, why,
    nan_in (the sides holding it: "new run", "reference")}."""
    out = []
    for arm, key, r, n in _pairs(new, ref):
        parts = {side: part for side, row in (("new run", n), ("reference", r)) if (part := _nan_part(row, key))}
        if parts:
            why = [f"the {side}'s {part} {'are' if ' and ' in part else 'is'} NaN" for side, part in parts.items()]
            out.append({"arm": arm, "metric": key, "why": "; ".join(why), "nan_in": list(parts)})
    return out


def lost(unchecked: list[dict]) -> list[dict]:
    """The metrics the reference measured that read NaN in the new run: the gate cannot vouch for them, so
    --fail-on-regression fails on them (a NaN in the reference alone does not)."""
    return [u for u in unchecked if u["nan_in"] == ["new run"]]


def moves(new: dict, ref: dict, tolerance: float | None = None,
          other_machine: bool = False) -> tuple[list[Move], int]:
    """Metrics whose intervals in the two summaries do not overlap (`.gated`: those beyond their tolerance too),
    and how many were checked; a metric with a NaN on either side is not checked (not_checked lists it)."""
    out, checked = [], 0
    for arm, key, r, n in _pairs(new, ref):
        if _nan_part(r, key) or _nan_part(n, key):
            continue
        checked += 1
        if n[key + LOW] > r[key + HIGH] or n[key + HIGH] < r[key + LOW]:
            out.append(Move(arm, key, r[key], (r[key + LOW], r[key + HIGH]), n[key], (n[key + LOW], n[key + HIGH]),
                            tolerance_for(key, tolerance), other_machine))
    return out, checked


def compare_dirs(new_dir: str | Path, ref_dir: str | Path,
                 tolerance: float | None = None) -> tuple[list[Move], int, list[dict]]:
    """Check that the runs are comparable (UserError naming what differs), then compare every interval: the moves,
    how many metrics were checked, and those not checked (a NaN ratio or interval: not_checked). `tolerance` (a
    relative change, 0.1 = 10%) replaces the per-family defaults in TOLERANCE. On another machine
    (env_differences(..., MACHINE)) only quality moves fail. UserError when every metric is NaN: nothing was gated."""
    new_dir, ref_dir = Path(new_dir), Path(ref_dir)
    new, ref = read_summary(new_dir), read_summary(ref_dir)
    for run_dir, summary in ((new_dir, new), (ref_dir, ref)):
        if summary["incomplete"]:       # its arms ran part of the requests: every figure would move
            raise UserError(f"{run_dir}: an incomplete run (stopped before every arm finished)",
                            "re-run it to the end; the gate compares whole runs")
    diffs = differences(new_dir, ref_dir, new, ref)
    if diffs:
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise UserError(f"{new_dir} and {ref_dir} are runs of different configs or models: {shown}",
                        f"compare runs of the same config: python -m testbed run {ref_dir}/config.yaml")
    if set(new["arms"]) != set(ref["arms"]):
        raise UserError(f"{new_dir} and {ref_dir} ran different arms ({sorted(new['arms'])} vs {sorted(ref['arms'])})",
                        "install the missing engine (vllm?) or compare runs made on the same setup")
    found, checked = moves(new, ref, tolerance, bool(env_differences(new_dir, ref_dir, MACHINE)))
    unchecked = not_checked(new, ref)
    if not checked and unchecked:
        sides = [d for d, side in ((new_dir, "new run"), (ref_dir, "reference"))
                 if any(side in u["nan_in"] for u in unchecked)]
        first = unchecked[0]
        raise UserError(f"{' and '.join(map(str, sides))}: every metric with an interval is NaN ({len(unchecked)}, "
                        f"e.g. {first['arm']}: {first['metric']}: {first['why']}), so nothing can be gated",
                        "look for an arm or baseline that produced no tokens (its summary.json), and re-run it")
    if not checked:     # name the side without intervals: the new run's can lack them as well as the reference's
        bare = ref_dir if not any(gated_keys(row) for row in ref["arms"].values()) else new_dir
        raise UserError(f"{bare}: no metric carries a confidence interval (a run from before intervals existed)",
                        "re-run the reference config, or publish it again" if bare == ref_dir else
                        "re-run the new run with this version")
    return found, checked, unchecked
