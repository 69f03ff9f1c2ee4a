"""Reading run directories back, and comparing runs: `testbed report RUN_DIR [RUN_DIR...]`.

    compare_runs(["results/spec-20250101T000000Z", "results/paged-20250102T000000Z"])
    # DataFrame indexed by (run, arm): baseline flag, then every flat metric

A missing or malformed run directory raises UserError naming it (and the file: a directory where summary.json
or requests.jsonl goes is one too).
"""
import json
from pathlib import Path

import pandas as pd

from testbed.errors import UserError
from testbed.report.rebuild import rebuild_summary
from testbed.report.run_files import RECORDS_FIX, check_record, load_summary, records_file, summary_file


def read_summary(run_dir: str | Path) -> dict:
    """summary.json of a run directory, checked (report/run_files.py); rebuilt from requests.jsonl if missing."""
    path = summary_file(run_dir)            # UserError where a directory sits in its place
    if path is None and records_file(run_dir):
        return rebuild_summary(run_dir, read_records(run_dir))     # a killed run: marked incomplete
    if path is None:
        raise UserError(f"{run_dir}: no summary.json (not a run directory, or the run never finished an arm)",
                        "give a directory under results/ written by `testbed run`")
    summary = load_summary(path)
    if not summary["arms"]:         # stopped before any request finished: nothing to show, nothing lost
        raise UserError(f"{path}: no arm finished a request (the run was stopped before the first did)",
                        "re-run the experiment, or leave this directory out")
    return summary


def read_env(run_dir: str | Path) -> dict:
    """env.json of a run directory; {} when it is missing, malformed or not a mapping (an older run)."""
    try:
        env = json.loads((Path(run_dir) / "env.json").read_text())
    except (OSError, ValueError):
        return {}
    return env if isinstance(env, dict) else {}


def read_records(run_dir: str | Path) -> list[dict]:
    """requests.jsonl as checked dicts; a torn last line (an interrupted write) is dropped, any other bad line is an
    error naming it."""
    path = records_file(run_dir)            # UserError where a directory sits in its place
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", RECORDS_FIX) from None
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if i == len(lines):
                break
            raise UserError(f"{path}:{i}: malformed JSON line", RECORDS_FIX) from None
        check_record(rec, f"{path}:{i}")
        records.append(rec)
    return records


def _labels(run_dirs: list[str | Path]) -> list[str]:
    """Directory names, with " (2)", " (3)" ... where the same name comes again."""
    seen: dict[str, int] = {}
    out = []
    for d in run_dirs:
        name = Path(d).name
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def compare_runs(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per (run, arm) across runs: run name, arm, whether it was that run's baseline, its metrics."""
    if not run_dirs:
        raise UserError("no run directories given", "e.g. testbed report results/<name>-<timestamp>")
    rows = []
    for label, run_dir in zip(_labels(run_dirs), run_dirs):
        summary = read_summary(run_dir)
        for arm, metrics in summary["arms"].items():
            rows.append({"run": label, "arm": arm, "name": summary.get("name"),
                         "baseline": arm == summary.get("baseline"),
                         "incomplete": bool(summary.get("incomplete")), **metrics})
    return pd.DataFrame(rows).set_index(["run", "arm"])
