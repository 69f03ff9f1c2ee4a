"""A summary rebuilt from requests.jsonl, for a run killed before it wrote summary.json (SIGKILL, power loss).

    summary = rebuild_summary("results/quickstart-20260101T000000Z")   # marked "incomplete": true

Every figure that the records hold is recomputed as the runner computes it; engine stats and
memory are not in the records, so those metrics are absent. An arm's wall time is taken as the
last finish time of each of its passes (records time from their pass's start), summed.
"""
from pathlib import Path

from testbed.config import SloConfig
from testbed.errors import UserError
from testbed.metrics.summary import add_ratios, by_category, summarize_arm
from testbed.safe_yaml import load_yaml

NOTE = ("Rebuilt from requests.jsonl: summary.json was missing (the run was killed). Engine stats and memory are "
        "absent; each arm's wall time is its passes' last finish times summed.")


def rebuild_summary(run_dir: str | Path, records: list[dict]) -> dict:
    """The summary the runner would have written for these records, marked incomplete."""
    if not records:
        raise UserError(f"{run_dir}: no summary.json and requests.jsonl holds no requests",
                        "give a directory under results/ written by `testbed run`")
    settings = _settings(Path(run_dir))
    arms_in_order = list(dict.fromkeys(r.get("arm", "?") for r in records))
    arms = {a: _arm(records, a, settings) for a in arms_in_order}
    baseline = settings.get("baseline") if settings.get("baseline") in arms else arms_in_order[0]
    return {"name": settings.get("name") or Path(run_dir).name, "baseline": baseline, "incomplete": True,
            "arms": add_ratios(arms, baseline),
            "by_category": {a: by_category([r for r in records if r.get("arm") == a]) for a in arms},
            "notes": [NOTE]}


def _arm(records: list[dict], arm: str, settings: dict) -> dict:
    recs = [r for r in records if r.get("arm") == arm]
    last: dict[tuple, float] = {}
    for r in recs:
        key = (r.get("repeat"), r.get("rate"))
        last[key] = max(last.get(key, 0.0), r.get("finish_s") or r.get("arrival_s") or 0.0)
    return summarize_arm(recs, sum(last.values()), {}, {}, settings.get("usd_per_hour", 0.0), settings.get("slo"))


def _settings(run_dir: Path) -> dict:
    """name, baseline, cost and SLOs from the run's config.yaml, where it is readable (else defaults)."""
    try:
        raw = load_yaml((run_dir / "config.yaml").read_text(encoding="utf-8"), "config.yaml")
    except (OSError, UnicodeDecodeError, UserError):
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    try:
        slo = SloConfig.model_validate(raw.get("slo") or {})
        usd = float((raw.get("cost") or {}).get("usd_per_hour") or 0.0)
    except (ValueError, TypeError, AttributeError):
        slo, usd = SloConfig(), 0.0
    return {"name": raw.get("name"), "baseline": raw.get("baseline"), "slo": slo, "usd_per_hour": usd}
