"""Recompute a published reference's drift check from its own records with today's rule, no request re-run.

    python scripts/rederive_drift.py results/reference/capacity

Used on the capacity reference (cb00b87), which printed a false -46% baseline-drift warning: first with
53e63b3's rule (each block read against its own rate's mean: -0.0%, which only compared neighbours),
then with the same-rate pairs of docs/drift.md (not measurable under its lockstep search), each time on
the reference as first published (tests/test_bench_scripts.py `_as_first_published`). The stored run
order is checked first: the old rule (every rate pooled) recomputed from the records must give back
the stored figure. Then summary.json, summary.csv and report.md are rewritten and reference.json
records the re-derivation. Only arrival-driven runs (one block per arm, repeat and rate) qualify.
"""
import argparse
import gzip
import json
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from testbed.metrics.drift import baseline_drift, drift_summary
from testbed.plugins import load_plugins
from testbed.publish import report_with_provenance
from testbed.report.compare import read_env
from testbed.report.writer import RunWriter


def runs_from(summary: dict, records: list[dict]) -> dict[str, list]:
    """Each arm's passes in the order it ran them (summary["runs"]), with their records."""
    runs: dict[str, list] = {}
    for i, r in enumerate(summary["runs"]):
        recs = [x for x in records if (x["arm"], x["repeat"], x["rate"]) == (r["arm"], r["repeat"], r["rate"])]
        if len(recs) != r["n"]:
            raise SystemExit(f"{r}: {len(recs)} records, not {r['n']}: not one pass per arm, repeat and rate")
        runs.setdefault(r["arm"], []).append(SimpleNamespace(repeat=r["repeat"], rate=r["rate"] and float(r["rate"]),
                                                             block=None, wall_s=r["wall_s"], records=recs, started=i))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", type=Path, help="a results/reference/<config> directory")
    ref = ap.parse_args().reference
    load_plugins()
    summary = json.loads((ref / "summary.json").read_text())
    records = [json.loads(line) for line in gzip.open(ref / "requests.jsonl.gz", "rt")]
    runs = runs_from(summary, records)
    base = summary["baseline"]
    pooled = baseline_drift([SimpleNamespace(**{**vars(r), "rate": None, "block": r.started}) for r in runs[base]])
    if abs(pooled["moved"] - summary["drift"]["moved"]) > 1e-9:
        raise SystemExit(f"the old rule gives {pooled['moved']:+.4f}, the reference {summary['drift']['moved']:+.4f}: "
                         "the stored run order is not the one that ran")
    old, (_, summary["drift"]) = summary["drift"]["moved"], drift_summary(runs, base)
    now = summary["drift"].get("moved")
    print(f"{ref}: baseline drift {old:+.1%} by the old rule, "
          f"{'not measurable' if now is None else format(now, '+.1%')} by today's")
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / json.loads((ref / "reference.json").read_text())["run_dir"]
        shutil.copytree(ref, run_dir)
        writer = RunWriter(run_dir)
        writer.write_summary(summary)
        writer.write_report(summary, records)
        lines = report_with_provenance(run_dir, read_env(run_dir)).split("\n")
        lines[2] += (f" Its drift check was re-derived from these records at `{sha}` by today's rule (the run "
                     f"itself printed {old:+.1%}; reference.json says so).")
        (ref / "report.md").write_text("\n".join(lines), encoding="utf-8")
        for name in ("summary.json", "summary.csv"):
            shutil.copy2(run_dir / name, ref / name)
    meta = json.loads((ref / "reference.json").read_text())
    if "rederived" in meta:     # an earlier re-derivation stays on record
        meta["rederived_earlier"] = [*meta.get("rederived_earlier", []), meta["rederived"]]
    meta["rederived"] = {"commit": sha, "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "what": "summary.json drift and report.md re-derived from this run's own records "
                                 "(scripts/rederive_drift.py); no request re-run"}
    (ref / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
