"""The decision at the top of every report, and in summary.json as summary["decision"].

    summary["decision"] = decide(summary)
    # {"pareto_front": ["batch1", "paged"], "deploy": "paged", "deploy_reason": "...", "quality_losers": [],
    #  "slo_misses": ["batch8"], "verdict": "fix_the_system", "verdict_sentence": "..."}
    lines = decision_lines(summary)      # Markdown lines

The rule, in order:
1. SLOs: with SLOs configured, an arm whose share of requests meeting every SLO is under SLO_TARGET misses them.
   After an SLO search (summary["capacity"]) the pooled share mixes overloaded probes in, so an arm misses
   the SLOs only when its search found no rate meeting them; see `capacity_rates`.
2. Quality losers: arms whose accuracy difference to the baseline has a 95% interval wholly below 0.
3. Pareto front over quality (accuracy, higher), throughput (output tok/s, higher) and cost ($ per correct
   answer, else $/M output tokens; lower), among arms that meet the SLOs (all arms when none does).
4. Deploy: among arms that meet the SLOs and are no quality loser, those that gain quality beyond the
   interval; else those faster than the baseline beyond the interval; the fastest of them on the front.
   With neither, the baseline (no arm beats it beyond noise), or the fastest eligible arm when the
   baseline misses the SLOs.
5. Verdict: the failure diagnosis of the deployed arm's wrong answers, in one sentence (testbed/diagnose).
"""
import html
import re
import statistics

from testbed.metrics.ratio_ci import distinguishable

SLO_TARGET = 0.9
THROUGHPUT = "output_throughput"
QUALITY_DIFF = "quality_accuracy_diff_vs_baseline"
VERDICTS = {"fix_the_system": "fix the system (retrieval, context, routing), not the model",
            "model_is_the_limit": "the model is the limit: a stronger model, not the pipeline, would help",
            "both": "both the system and the model limit quality; the system is the cheaper fix"}


def slo_share(row: dict) -> float | None:
    """Share of the arm's requests that met every configured SLO; None when no SLO is set."""
    if row.get("goodput") is None or not row.get("n_requests"):
        return None
    return row["goodput"] * row.get("duration_s", 0.0) / row["n_requests"]


def capacity_rates(summary: dict) -> dict[str, float | None]:
    """Per searched arm, the median over repeats of the rate where its fitted attainment crosses the target
    (the bisection's last met probe where the fit did not cross); None when no repeat found one."""
    out = {}
    for arm, cap in (summary.get("capacity") or {}).items():
        fits, probes = cap.get("rate_at_target_per_repeat") or [], cap.get("max_rate_per_repeat") or []
        rates = [r for r in (f if f is not None else p for f, p in zip(fits, probes)) if r]
        out[arm] = statistics.median(rates) if rates else None
    return out


def _capacity_pick(rates: dict[str, float | None], eligible: list[str]) -> tuple[str | None, str]:
    found = {a: r for a, r in rates.items() if r is not None and a in eligible}
    if not found:
        return None, "no arm's SLO search found a rate meeting the SLOs"
    best = max(found, key=found.get)
    others = ", ".join(f"{a} {r:.3g}" for a, r in sorted(rates.items()) if a != best and r is not None)
    return best, (f"the highest rate meeting the SLOs in its search: {found[best]:.3g} req/s (median over repeats)"
                  + (f"; {others}" if others else ""))


def _axes(arms: dict[str, dict]) -> list[tuple[str, int]]:
    """(metric, +1 higher is better / -1 lower is better) that every arm reports."""
    cost = next((k for k in ("cost_per_success_usd", "cost_per_million_output_tokens_usd")
                 if all(k in a for a in arms.values())), None)
    axes = [("quality_accuracy", 1), (THROUGHPUT, 1)] + ([(cost, -1)] if cost else [])
    return [(k, s) for k, s in axes if all(k in a for a in arms.values())]


def pareto_front(arms: dict[str, dict]) -> list[str]:
    """Arms no other arm beats on every axis (and strictly on one)."""
    axes = _axes(arms)
    pts = {a: [s * row[k] for k, s in axes] for a, row in arms.items()}

    def dominated(a: str) -> bool:
        return any(all(x >= y for x, y in zip(pts[b], pts[a])) and pts[b] != pts[a] for b in pts if b != a)
    return [a for a in arms if axes and not dominated(a)]


def _pick(arms: dict[str, dict], baseline: str, eligible: list[str], front: list[str]) -> tuple[str | None, str]:
    """The arm to deploy and why (rule 4)."""
    fastest = lambda names: max(names, key=lambda a: arms[a].get(THROUGHPUT, 0.0))    # noqa: E731
    on_front = lambda names: [a for a in names if a in front] or names                  # noqa: E731
    better_q = [a for a in eligible if a != baseline and distinguishable(arms[a], QUALITY_DIFF) and arms[a][QUALITY_DIFF] > 0]
    if better_q:
        return fastest(on_front(better_q)), "more accurate than the baseline beyond the 95% interval, meets the SLOs"
    faster = [a for a in eligible if a != baseline and distinguishable(arms[a], f"{THROUGHPUT}_vs_baseline")
              and arms[a][f"{THROUGHPUT}_vs_baseline"] > 1]
    if faster:
        a = fastest(on_front(faster))
        return a, (f"×{arms[a][f'{THROUGHPUT}_vs_baseline']:.2f} the baseline's output throughput beyond the 95% "
                   "interval, no quality loss beyond it, meets the SLOs")
    if baseline in eligible:
        return baseline, "no arm beats the baseline beyond the 95% interval on quality or throughput"
    if eligible:
        return fastest(eligible), "the baseline misses the SLOs; the fastest arm that meets them"
    return None, "no arm meets the SLOs"


def verdict(diagnosis: dict | None, arm: str | None) -> tuple[str | None, str]:
    """(key of VERDICTS or None, one sentence) from the arm's classed failures."""
    a = ((diagnosis or {}).get("arms") or {}).get(arm or "")
    if not a:
        return None, "No failure diagnosis for this arm."
    head = f"Failure diagnosis of {arm} ({a['failures']}/{a['requests']} wrong): "
    share = a.get("model_share_of_classed")
    if not a["failures"]:
        return None, head + "no wrong answers."
    if share is None:
        return None, head + "no failure could be classed (no gold-chunk labels, or probes not run)."
    key = "fix_the_system" if share < 0.2 else "model_is_the_limit" if share > 0.5 else "both"
    return key, head + f"{share:.0%} model errors, so {VERDICTS[key]}."


def decide(summary: dict) -> dict:
    """summary["decision"] from the arms' rows (ratios, intervals, goodput) and the diagnosis."""
    arms, baseline = summary.get("arms") or {}, summary.get("baseline")
    if not arms:
        return {"pareto_front": [], "pareto_axes": [], "deploy": None, "deploy_reason": "no arm finished",
                "quality_losers": [], "slo_misses": [], "slo_target": SLO_TARGET, "slo_share": {}, "verdict": None,
                "verdict_sentence": "No failure diagnosis: no arm finished."}
    shares = {a: slo_share(row) for a, row in arms.items()}
    capacity = capacity_rates(summary)
    misses = ([a for a in arms if a in capacity and capacity[a] is None] if capacity else
              [a for a, s in shares.items() if s is not None and s < SLO_TARGET])
    meets = [a for a in arms if a not in misses]
    losers = [a for a in arms if a != baseline and distinguishable(arms[a], QUALITY_DIFF) and arms[a][QUALITY_DIFF] < 0]
    front = pareto_front({a: arms[a] for a in (meets or arms)})
    eligible = [a for a in meets if a not in losers]
    deploy, why = _capacity_pick(capacity, eligible) if capacity else _pick(arms, baseline, eligible, front)
    key, sentence = verdict(summary.get("diagnosis"), deploy or baseline)
    return {"pareto_front": front, "pareto_axes": [k for k, _ in _axes(arms)], "deploy": deploy, "deploy_reason": why,
            "quality_losers": losers, "slo_misses": misses, "slo_target": SLO_TARGET,
            "slo_share": {a: s for a, s in shares.items() if s is not None}, "verdict": key, "verdict_sentence": sentence}


def decision_lines(summary: dict) -> list[str]:
    """The report's "Decision" section (Markdown), [] when the summary has none."""
    d = summary.get("decision")
    if not d:
        return []
    names = lambda xs: ", ".join(f"**{x}**" for x in xs) or "none"     # noqa: E731
    slo = (f"Missing the SLOs (under {d['slo_target']:.0%} of requests within every SLO): {names(d['slo_misses'])}."
           if d["slo_share"] else "No SLOs configured.")
    return ["", "## Decision", "",
            f"- **Deploy: {d['deploy'] or 'none'}** — {d['deploy_reason']}.",
            f"- Pareto front ({' / '.join(d['pareto_axes'])}): {names(d['pareto_front'])}.",
            f"- Losing to the baseline on quality beyond the 95% interval: {names(d['quality_losers'])}.",
            f"- {slo}", f"- {d['verdict_sentence']}"]


def decision_html(summary: dict) -> list[str]:
    """The same section for report.html: a heading and one list item per line, **bold** as <b>."""
    lines = [x for x in decision_lines(summary) if x.startswith("- ")]
    if not lines:
        return []
    items = "".join("<li>" + re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(x[2:])) + "</li>" for x in lines)
    return ["<h2>Decision</h2>", f"<ul>{items}</ul>"]
