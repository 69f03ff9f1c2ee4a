"""A summary rebuilt from requests.jsonl, for a run killed before it wrote summary.json (SIGKILL, power loss).

    summary = rebuild_summary("results/quickstart-20260101T000000Z")   # marked "incomplete": true

Every figure that the records hold is recomputed by the runner's own functions (testbed/run_summary.py)
over the passes read back from the records; engine stats, memory and CPU time are not in the records, so
those metrics are absent. A pass's wall time is taken as its last finish time (records time from their
pass's start).
"""
from pathlib import Path
from types import SimpleNamespace

from testbed.config import SloConfig
from testbed.errors import UserError
from testbed.run_summary import category_rows, comparison
from testbed.safe_yaml import load_yaml

# a rebuilt arm has no plan: its sections' aggregates need state the run did not write down
NO_SECTIONS = SimpleNamespace(aggregate=lambda records: {})

NOTE = ("Rebuilt from requests.jsonl: summary.json was missing (the run was killed). Engine stats and memory are "
        "absent; each arm's wall time is its passes' last finish times summed.")
NO_BLOCK = ("These records carry no `block` (written before it was recorded): an offline run cut into blocks reads "
            "only its longest block's time per pass, so its throughputs are overstated.")


def rebuild_summary(run_dir: str | Path, records: list[dict]) -> dict:
    """The summary the runner would have written for these records, marked incomplete."""
    if not records:
        raise UserError(f"{run_dir}: no summary.json and requests.jsonl holds no requests",
                        "give a directory under results/ written by `testbed run`")
    settings = _settings(Path(run_dir))
    runs = passes(records)
    baseline = settings.get("baseline") if settings.get("baseline") in runs else next(iter(runs))
    arms, drift = comparison(runs, dict.fromkeys(runs, NO_SECTIONS), baseline, settings["usd_per_hour"],
                             settings["slo"])
    return {"name": settings.get("name") or Path(run_dir).name, "baseline": baseline, "incomplete": True,
            "arms": arms,
            "by_category": {a: category_rows([r for run in runs[a] for r in run.records], NO_SECTIONS) for a in arms},
            "notes": [NOTE] + ([NO_BLOCK] if any("block" not in r for r in records) else []),
            **({"drift": drift} if drift else {})}


def passes(records: list[dict]) -> dict[str, list]:
    """Each arm's passes, in the order they first appear in requests.jsonl (the run order), with the fields of
    the runner's ArmRun that the summary reads: a pass is one (repeat, rate, block) of the arm, its wall time
    the last finish time of its records. Records written before they carried `block` give one pass per
    (repeat, rate): an offline run cut into blocks then reads its longest block's time as the whole pass's."""
    runs: dict[tuple, SimpleNamespace] = {}
    for r in records:
        key = (r.get("arm", "?"), r.get("repeat"), r.get("rate"), r.get("block"))
        run = runs.setdefault(key, SimpleNamespace(repeat=key[1], rate=key[2], block=key[3], records=[], wall_s=0.0,
                                                   engine_stats={}, memory={}, started=len(runs)))
        run.records.append(r)
        run.wall_s = max(run.wall_s, r.get("finish_s") or r.get("arrival_s") or 0.0)
    out: dict[str, list] = {}
    for (arm, *_), run in runs.items():
        out.setdefault(arm, []).append(run)
    return out


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
