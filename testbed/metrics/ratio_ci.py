"""Paired bootstrap intervals on every `<metric>_vs_baseline` ratio and on each arm's quality (DESIGN §3).

    add_ratio_cis(arms, runs, baseline="batch1", slo=cfg.slo)   # in place: <key>_vs_baseline_ci_low/_ci_high
    distinguishable(arms["paged"], "output_throughput_vs_baseline")   # True: the interval excludes 1.0

What is resampled; the arm and the baseline always get the same draw (paired):
- latency means and percentiles (TTFT, TPOT, ITL, E2EL): items. An item's requests over repeats and
  rates are drawn together, so the interval covers repeats as well as items.
- only the passes (repeat, rate) both arms ran: an SLO search probes different rates per arm, and a
  ratio across rates compares loads, not arms (`shared_passes`; the runner's point estimates read the same).
- throughputs and goodput: blocks, the (repeat, rate, block) passes both arms ran. Time is measured per
  block (a batch shares its seconds), so a block's items go together; each draw's figure is
  sum(tokens) / sum(seconds) over the drawn blocks, as the pooled one is. One block gives no interval.
- memory: blocks; the statistic is the highest peak among the drawn blocks, as the arm's row keeps its highest.
- quality: items; each arm's quality_<score> gets an interval, and quality_accuracy_diff_vs_baseline
  (arm minus baseline on the same items) gets one; so does match_rate_vs_baseline.
scipy.stats.bootstrap, percentile method, 2,000 resamples, seeded: the same run gives the same interval.
"""
import warnings
from collections import defaultdict
from typing import Callable

import numpy as np
from scipy.stats import bootstrap

from testbed.metrics import latency
from testbed.metrics.summary import STAT_KEYS, quality_values, shared_passes

CONFIDENCE = 0.95
N_RESAMPLES = 2000
LOW, HIGH = "_ci_low", "_ci_high"
MAX_CELLS = 20_000_000          # floats one vectorised batch of resamples may hold
PER_RECORD = {"ttft_ms": latency.ttft_ms, "tpot_ms": latency.tpot_ms, "e2el_ms": latency.e2el_ms,
              "itl_ms": latency.itl_ms}
# block columns: output tokens, completed requests, prompt + output tokens, requests meeting the SLOs, wall s
THROUGHPUT_COLS = {"output_throughput": 0, "request_throughput": 1, "total_token_throughput": 2, "goodput": 3}
MEMORY_KEYS = ("peak_memory_mb", "gpu_max_allocated_mb", "nvml_used_mb")


def interval(n: int, stat: Callable[[np.ndarray], np.ndarray], cells: int = 64) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval of stat(idx) over draws idx [B, n] of range(n) (`cells`: values per
    drawn index, to size the batches); None when undefined."""
    if n < 2:
        return None, None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)       # a draw of only failed items is NaN: no interval
        res = bootstrap((np.arange(n),), lambda idx, axis=-1: stat(np.atleast_2d(idx)), vectorized=True,
                        method="percentile", n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE,
                        batch=max(1, MAX_CELLS // (n * cells)), rng=np.random.default_rng(0))
    lo, hi = res.confidence_interval
    return (float(lo), float(hi)) if np.isfinite(lo) and np.isfinite(hi) else (None, None)


def _matrix(groups: dict[str, list], ids: list[str], values: Callable[[dict], list[float]]) -> np.ndarray:
    """[n_items, widest] values per item, NaN-padded (items differ in requests and ITL gaps)."""
    rows = [[v for r in groups.get(i, []) for v in values(r)] for i in ids]
    out = np.full((len(ids), max([1, *map(len, rows)])), np.nan)
    for k, row in enumerate(rows):
        out[k, :len(row)] = row
    return out


def nan_percentile(x: np.ndarray, q: float) -> np.ndarray:
    """np.nanpercentile(x, q, axis=-1) with the default linear rule, for [B, m] (numpy's loops over rows)."""
    s = np.sort(x, axis=-1)                                  # NaNs sort last
    n = (~np.isnan(x)).sum(axis=-1)                          # [B]
    pos = np.maximum(n - 1, 0) * q / 100
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    rows = np.arange(len(x))
    out = s[rows, lo] + (s[rows, hi] - s[rows, lo]) * (pos - lo)
    return np.where(n > 0, out, np.nan)


def _reduce(x: np.ndarray, stat: str) -> np.ndarray:
    """mean or pNN along the last axis of [B, m], NaNs (padding, failed requests) ignored."""
    return np.nanmean(x, axis=-1) if stat == "mean" else nan_percentile(x, int(stat[1:]))


def _drawn(m: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return m[idx].reshape(idx.shape[0], -1)       # [B, n, w] -> [B, n * w]: the drawn items' values pooled


def by_item(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[str(r.get("item_id") or r.get("request_id"))].append(r)
    # by id, not by finish order: the order (interleaved or not) changes which request finishes first, and
    # a bootstrap draw over positions would then give other intervals for the same values
    return dict(sorted(groups.items()))


def _latency_values(name: str) -> Callable[[dict], list[float]]:
    fn = PER_RECORD[name]

    def values(rec: dict) -> list[float]:
        if not latency.is_ok(rec):
            return []
        v = fn(rec)
        return [x for x in (v if isinstance(v, list) else [v]) if x is not None]
    return values


def latency_cis(arm: dict, base: dict, a_recs: list[dict], b_recs: list[dict]) -> dict:
    """<latency>_<stat>_vs_baseline_ci_low/_ci_high over items both arms answered."""
    ga, gb = by_item(a_recs), by_item(b_recs)
    ids = [i for i in ga if i in gb]
    out = {}
    for name in PER_RECORD:
        keys = [s for s in STAT_KEYS if f"{name}_{s}_vs_baseline" in arm]
        if not keys:
            continue
        ma, mb = _matrix(ga, ids, _latency_values(name)), _matrix(gb, ids, _latency_values(name))
        for s in keys:
            lo, hi = interval(len(ids), lambda idx: _reduce(_drawn(ma, idx), s) / _reduce(_drawn(mb, idx), s),
                              ma.shape[1] + mb.shape[1])
            _put_ci(out, f"{name}_{s}_vs_baseline", lo, hi)
    return out


def _block_key(run) -> tuple:
    return (run.repeat, run.rate, run.block)


def block_table(runs: list, slo) -> dict[tuple, np.ndarray]:
    """{(repeat, rate, block): [output tokens, requests, total tokens, requests meeting the SLOs, wall s]}."""
    out = {}
    for run in runs:
        ok = [r for r in run.records if latency.is_ok(r)]
        good = sum(latency.meets_slo(r, slo) for r in run.records) if latency.slo_configured(slo) else 0
        out[_block_key(run)] = np.array([sum(r.get("output_tokens", 0) for r in ok), len(ok),
                                         sum(int(r.get("prompt_tokens") or 0) + int(r.get("output_tokens") or 0)
                                             for r in ok), good, run.wall_s], float)
    return out


def throughput_cis(arm: dict, a_runs: list, b_runs: list, slo) -> dict:
    """Throughput and goodput ratios' intervals over the blocks both arms ran, and the memory ratios'."""
    ta, tb = block_table(a_runs, slo), block_table(b_runs, slo)
    keys = [k for k in ta if k in tb]
    if not keys:
        return {}
    a, b = np.stack([ta[k] for k in keys]), np.stack([tb[k] for k in keys])      # [n_blocks, 5]
    out = {"ci_blocks": len(keys)}
    for name, col in THROUGHPUT_COLS.items():
        if f"{name}_vs_baseline" in arm:
            def rate(m, idx, col=col):
                return m[idx, col].sum(-1) / m[idx, 4].sum(-1)
            _put_ci(out, f"{name}_vs_baseline", *interval(len(keys), lambda idx: rate(a, idx) / rate(b, idx)))
    ma, mb = ({_block_key(r): r.memory for r in runs} for runs in (a_runs, b_runs))
    for name in MEMORY_KEYS:
        if f"{name}_vs_baseline" in arm and all(name in ma[k] and name in mb[k] for k in keys):
            pa, pb = (np.array([m[k][name] for k in keys], float) for m in (ma, mb))
            _put_ci(out, f"{name}_vs_baseline", *interval(len(keys), lambda idx: pa[idx].max(-1) / pb[idx].max(-1)))
    return out


def quality_cis(records: list[dict]) -> dict:
    """quality_<score>_ci_low/_ci_high of one arm, over its items."""
    out = {}
    for key, pairs in quality_values(records).items():
        groups = by_item([{**r, "_v": v} for r, v in pairs])
        m = _matrix(groups, list(groups), lambda r: [r["_v"]])
        _put_ci(out, key, *interval(len(groups), lambda idx: np.nanmean(_drawn(m, idx), axis=-1)))
    return out


def paired_quality(a_recs: list[dict], b_recs: list[dict]) -> dict:
    """quality_accuracy_diff_vs_baseline (arm - baseline, same items) and match_rate_vs_baseline, with intervals."""
    out = {}
    qa, qb = quality_values(a_recs).get("quality_accuracy"), quality_values(b_recs).get("quality_accuracy")
    if qa and qb:
        ga, gb = (by_item([{**r, "_v": v} for r, v in q]) for q in (qa, qb))
        ids = [i for i in ga if i in gb]
        ma, mb = (_matrix(g, ids, lambda r: [r["_v"]]) for g in (ga, gb))
        if ids:
            out["quality_accuracy_diff_vs_baseline"] = float(np.nanmean(ma) - np.nanmean(mb))
            out["ci_items"] = len(ids)
            _put_ci(out, "quality_accuracy_diff_vs_baseline",
                    *interval(len(ids), lambda idx: np.nanmean(_drawn(ma, idx), -1) - np.nanmean(_drawn(mb, idx), -1)))
    matched = by_item([r for r in a_recs if r.get("match_baseline") is not None])
    if matched:
        m = _matrix(matched, list(matched), lambda r: [float(bool(r["match_baseline"]))])
        _put_ci(out, "match_rate_vs_baseline", *interval(len(matched), lambda idx: np.nanmean(_drawn(m, idx), -1)))
    return out


def _put_ci(out: dict, key: str, lo: float | None, hi: float | None) -> None:
    if lo is not None and hi is not None:
        out[key + LOW], out[key + HIGH] = lo, hi


def _records(runs: list) -> list[dict]:
    return [r for run in runs for r in run.records]


def add_ratio_cis(arms: dict[str, dict], runs: dict[str, list], baseline: str, slo=None) -> None:
    """Every arm's intervals into its summary row (in place); runs: {arm: [ArmRun]} as the runner keeps them."""
    for name, row in arms.items():
        if name not in runs:
            continue
        row.update(quality_cis(_records(runs[name])))
        if name == baseline or baseline not in runs:
            continue
        a_runs, b_runs = shared_passes(runs[name], runs[baseline])
        a_recs, b_recs = _records(a_runs), _records(b_runs)
        row.update(latency_cis(row, arms[baseline], a_recs, b_recs))
        row.update(throughput_cis(row, a_runs, b_runs, slo))
        row.update(paired_quality(a_recs, b_recs))


def distinguishable(row: dict, key: str, null: float | None = None) -> bool | None:
    """Whether `key`'s interval excludes the null (1.0 for a ratio, 0 for a _diff_): None without an interval."""
    lo, hi = row.get(key + LOW), row.get(key + HIGH)
    if lo is None or hi is None:
        return None
    null = (0.0 if "_diff_" in key else 1.0) if null is None else null
    return lo > null or hi < null
