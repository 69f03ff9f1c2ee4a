"""Two clients measuring one server, compared round by round so that the server's drift cancels.

    s = summarise(rows, passes, tpot_pairs, ttft_pairs)   # the pieces of one server's parity.json entry
    print(render(s))
    s["metrics"][i]  # {"metric": "TTFT p50", "pooled": -0.12, "rounds": [0.002, -0.22, ...],
                     #  "all": {"n", "mean", "median", "ci_low", "ci_high"}, "kept": {...}, "goal": 0.05, ...}

scripts/bench_parity.py runs R rounds in ABBA order (vLLM, testbed | testbed, vLLM | ...) on one
server. The two passes of a round run back to back, so a server that drifts slowly (host load,
allocator state, clocks) is nearly the same for both; testbed / vLLM - 1 taken within each round
removes the drift, and the spread of the R per-round figures gives the interval. Rounds, not
requests, are the independent units (the requests of a pass share the server's state), so the
interval is Student's t over rounds: with 4 rounds it is wide, and it says so.

A pass during which the server itself was off says nothing about the clients. The rule, fixed
before any run was read: a pass is drifted when the server's own mean TTFT over it (from its
/metrics) is more than DRIFT_TOL from the median over all of the run's passes; a round with a
drifted pass is flagged. Every figure is given over all rounds and over the unflagged ones; no
round is dropped silently. If one client's load slowed the server, its passes would all be
flagged, which shows as every round flagged rather than as agreement.
"""
import numpy as np
from scipy import stats

from testbed.metrics.parity import _mean, rel

DRIFT_TOL = 0.10
# The goals of issue 19: p50s and output throughput within 5%, every p99 within 10%.
GOALS = {"TTFT p50": 0.05, "TPOT p50": 0.05, "output throughput tok/s": 0.05,
         "TTFT p99": 0.10, "TPOT p99": 0.10, "ITL p99": 0.10, "E2EL p99": 0.10}
TPOT_PAIRED = "TPOT per request (paired)"
TTFT_PAIRED = "TTFT per request (paired)"


def flag_drifted(passes: list[dict], tol: float = DRIFT_TOL) -> list[dict]:
    """Each pass with `server_ttft_off` (its server TTFT mean / the run's median - 1) and `drifted`.
    A pass with no server TTFT is never flagged: there is no evidence either way."""
    known = [p["server_ttft_ms_mean"] for p in passes if p.get("server_ttft_ms_mean")]
    med = float(np.median(known)) if known else None
    out = []
    for p in passes:
        off = rel(p.get("server_ttft_ms_mean"), med)
        out.append({**p, "server_ttft_off": off, "drifted": off is not None and abs(off) > tol})
    return out


def round_rels(rows: list[dict], tpot_pairs: list[dict], ttft_pairs: list[dict]) -> dict[str, list]:
    """Per metric, testbed / vLLM - 1 in each round (index = round). Two per-request rows: the
    round's median per-request TPOT ratio, and its median per-request TTFT difference as a share
    of vLLM's TTFT p50 in that round (prompt i against prompt i removes the prompts' spread)."""
    out = {r["metric"]: [rel(t, v) for v, t in zip(r["vllm_rounds"], r["testbed_rounds"])] for r in rows}
    out[TPOT_PAIRED] = [p.get("tpot_rel_p50") for p in tpot_pairs]
    ttft_p50 = next((r["vllm_rounds"] for r in rows if r["metric"] == "TTFT p50"), [])
    out[TTFT_PAIRED] = [p["ttft_diff_ms_p50"] / v if p.get("ttft_diff_ms_p50") is not None and v else None
                        for p, v in zip(ttft_pairs, ttft_p50)]
    return out


def t_interval(values: list, confidence: float = 0.95) -> dict:
    """Mean of the per-round figures with a Student t interval over rounds, and their median.
    None where there is no value (mean) or fewer than two (interval)."""
    x = np.array([v for v in values if v is not None], float)
    out = {"n": int(x.size), "mean": None, "median": None, "ci_low": None, "ci_high": None}
    if x.size == 0:
        return out
    mean = float(x.mean())
    out.update(mean=mean, median=float(np.median(x)))
    if x.size >= 2:
        half = float(stats.t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
        out.update(ci_low=mean - half, ci_high=mean + half)
    return out


def verdict(s: dict, goal: float | None) -> str | None:
    """'met' when the mean over rounds is within the goal and so is its whole interval; 'mean met'
    when only the mean is (the rounds cannot resolve the goal); 'not met'; None without a goal."""
    if goal is None:
        return None
    if s["mean"] is None:
        return "no data"
    if abs(s["mean"]) > goal:
        return "not met"
    inside = s["ci_low"] is not None and -goal <= s["ci_low"] and s["ci_high"] <= goal
    return "met" if inside else "mean met"


def summarise(rows: list[dict], passes: list[dict], tpot_pairs: list[dict], ttft_pairs: list[dict],
              tol: float = DRIFT_TOL, flagged: list[dict] | None = None) -> dict:
    """Per metric: the pooled figure (each client's mean over rounds), the per-round figures, and
    their mean, median and t interval over all rounds and over rounds without a drifted pass.
    `flagged`: passes already through flag_drifted (pool() flags each run against its own median)."""
    flags = flagged if flagged is not None else flag_drifted(passes, tol)
    bad = sorted({p["round"] for p in flags if p["drifted"]})
    pooled = {r["metric"]: r["rel"] for r in rows}
    metrics = []
    for label, per_round in round_rels(rows, tpot_pairs, ttft_pairs).items():
        s_all = t_interval(per_round)
        s_kept = t_interval([x for i, x in enumerate(per_round) if i not in bad])
        goal = GOALS.get(label)
        metrics.append({"metric": label, "pooled": pooled.get(label), "rounds": per_round, "goal": goal,
                        "all": s_all, "kept": s_kept, "verdict_all": verdict(s_all, goal),
                        "verdict_kept": verdict(s_kept, goal)})
    rule = f"a pass is drifted when the server's own TTFT mean is > {tol:.0%} off the median of the run's passes"
    return {"rule": rule, "passes": flags, "flagged_rounds": bad, "metrics": metrics}


def pool(runs: list[dict], tol: float = DRIFT_TOL) -> dict:
    """One summary over the rounds of several runs on the same server, as if they were one run of
    all their rounds in the order given. The drift rule stays per run (a pass against the median of
    its own run's passes): a second run on a slower day is not flagged as a whole."""
    labels = [[r["metric"] for r in run["rows"]] for run in runs]
    if any(names != labels[0] for names in labels):
        raise ValueError("the runs compare different metrics; pool runs of one bench_parity version")
    rows = []
    for i, label in enumerate(labels[0]):
        v = [x for run in runs for x in run["rows"][i]["vllm_rounds"]]
        t = [x for run in runs for x in run["rows"][i]["testbed_rounds"]]
        rows.append({"metric": label, "vllm": _mean(v), "testbed": _mean(t), "rel": rel(_mean(t), _mean(v)),
                     "vllm_rounds": v, "testbed_rounds": t})
    flagged, offset = [], 0
    for run in runs:
        flagged += [{**p, "round": p["round"] + offset} for p in flag_drifted(run["passes"], tol)]
        offset += len(run["rows"][0]["vllm_rounds"])
    tpot = [p for run in runs for p in run["per-request TPOT testbed/vLLM - 1 (paired)"]]
    ttft = [p for run in runs for p in run.get("per-request TTFT testbed - vLLM ms (paired, same round)", [])]
    return summarise(rows, [], tpot, ttft, tol, flagged=flagged)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f}%"


def _stat(s: dict) -> str:
    ci = "" if s["ci_low"] is None else f" [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}]"
    return f"{_pct(s['mean'])}{ci} med {_pct(s['median'])} n={s['n']}"


def render(s: dict) -> str:
    """The passes with their drift flags, then one line per metric: pooled, per round, mean [95% t]
    and median over all rounds, the same without flagged rounds, and the goal's verdicts."""
    lines = [f"drift rule: {s['rule']}; flagged rounds: {s['flagged_rounds'] or 'none'}"]
    for p in s["passes"]:
        lines.append(f"  r{p['round']} {p['client']:<8} server TTFT {p.get('server_ttft_ms_mean')} ms "
                     f"({_pct(p['server_ttft_off'])})  server TPOT {p.get('server_tpot_ms_mean')} ms  "
                     f"server CPU {p.get('server_cpu_s')} s, runqueue wait {p.get('server_runqueue_wait_s')} s  steal "
                     f"{p.get('steal_cpu_s')} s  wall {p.get('wall_s')} s (client outside its requests "
                     f"{p.get('client_outside_s')} s){'  DRIFTED' if p['drifted'] else ''}")
    lines.append(f"{'metric':<28} {'pooled':>7}  {'per round':<32} {'all rounds: mean [95% t] median':<44} "
                 f"{'unflagged rounds':<44} goal: all / unflagged")
    for m in s["metrics"]:
        goal = "" if m["goal"] is None else f"±{m['goal']:.0%}: {m['verdict_all']} / {m['verdict_kept']}"
        rounds = " ".join(_pct(x) for x in m["rounds"])
        lines.append(f"{m['metric']:<28} {_pct(m['pooled']):>7}  {rounds:<32} {_stat(m['all']):<44} "
                     f"{_stat(m['kept']):<44} {goal}")
    return "\n".join(lines)
