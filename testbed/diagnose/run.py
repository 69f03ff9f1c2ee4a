"""Diagnose a run: at the end of every run (the report's section) and from the command line.

    summary["diagnosis"] = diagnose_experiment(exp)      # the runner, before the report is written
    diag = diagnose_run_dir("results/compression-<UTC>", probe=True)

Writes diagnosis.json (per-arm counts and shares, one row per wrong answer with its cause and
evidence) and keeps probe answers in diagnosis_probes.jsonl. The per-arm part goes into
summary["diagnosis"], which report.md and report.html render as "Failure diagnosis".

At the end of a run, probes use only the models the run already loaded and at most
REPORT_PROBE_BUDGET_S seconds, so the report's cost stays bounded; what is left shows as needs_probe,
and `python -m testbed diagnose RUN_DIR` finishes it (loading models as needed, reusing every cached
answer) and rewrites summary.json and the report.
"""
import json
from pathlib import Path
from typing import Any

import torch

from testbed.arm import arm_settings
from testbed.config import validate
from testbed.diagnose.classify import RULE, diagnose
from testbed.diagnose.probe import PROBES_FILE, ProbeRunner, model_specs
from testbed.errors import UserError
from testbed.models import pick_device
from testbed.plugins import load_plugins
from testbed.report import RunWriter, read_records
from testbed.report.rebuild import rebuild_summary
from testbed.report.run_files import check_counts, load_summary, records_file, summary_file
from testbed.report.writer import to_jsonable
from testbed.safe_yaml import load_yaml
from testbed.workloads.datasets import load_dataset

REPORT_PROBE_BUDGET_S = 120.0
DIAGNOSIS_FILE = "diagnosis.json"
RUN_DIR_FIX = "give a directory written by `python -m testbed run`, e.g. results/quickstart-<UTC>"


def diagnose_experiment(exp: Any, probe: bool = True) -> dict:
    """The runner's hook (an Experiment after its arms ran): diagnosis.json, and the report's part returned.

    probe=False (an interrupted run): only the run's own evidence and cached probes, no generation."""
    items = {it.id: it for it in exp.items}
    settings = arm_settings(exp.cfg)
    models = {plan.lm.spec_id: plan.lm for plan in exp.plans.values()}
    probe = ProbeRunner(exp.writer.run_dir, items, settings, models if probe else {}, load=False,
                        budget_s=REPORT_PROBE_BUDGET_S if probe else 0.0)
    return write_diagnosis(exp.writer.run_dir, diagnose(exp.records, items, probe, settings), probe)


def diagnose_run_dir(run_dir: str | Path, probe: bool = True) -> dict:
    """Diagnose a finished run directory; with probe=False only the run's evidence and cached probes count."""
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not run_dir.is_dir():
        raise UserError(f"RUN_DIR {run_dir}: no such directory", RUN_DIR_FIX)
    summary_path = summary_file(run_dir)       # each a UserError where a directory sits in the file's place
    if not config.is_file() or not records_file(run_dir):
        raise UserError(f"RUN_DIR {run_dir}: not a run directory (needs config.yaml and requests.jsonl)", RUN_DIR_FIX)
    try:
        raw = load_yaml(config.read_text(encoding="utf-8"), str(config), "restore config.yaml or re-run the experiment")
    except UnicodeDecodeError:
        raise UserError(f"{config}: not UTF-8 text", "restore config.yaml or re-run the experiment") from None
    load_plugins()
    cfg = validate(raw if isinstance(raw, dict) else {}, source=str(config))
    records = read_records(run_dir)
    if not records:
        raise UserError(f"RUN_DIR {run_dir}: requests.jsonl holds no requests", "run the experiment first")
    unknown = sorted({r["arm"] for r in records} - set(cfg.arms))
    if unknown:         # the probes replay an arm's settings from the config
        raise UserError(f"{run_dir / 'requests.jsonl'}: arms {unknown} are not in {config}",
                        "restore config.yaml or requests.jsonl from the run, or re-run the experiment")
    if summary_path:       # the counts and plots it rewrites would be a torn file's
        check_counts(run_dir / "requests.jsonl", load_summary(summary_path), records)
    RunWriter(run_dir).check_outputs(DIAGNOSIS_FILE, PROBES_FILE)     # refused before anything is written
    try:
        items = {it.id: it for it in load_dataset(cfg.workload.dataset, cfg.workload.categories)}
    except UserError as e:
        raise UserError(f"{config}: {e.message}", f"run diagnose from the directory the run started in; {e.fix}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    settings = arm_settings(cfg)
    runner = ProbeRunner(run_dir, items, settings, specs=model_specs(cfg), device=pick_device("auto"), load=probe)
    diag = diagnose(records, items, runner, settings)
    part = write_diagnosis(run_dir, diag, runner)
    if not summary_path:      # a killed run: rebuild it, marked incomplete
        RunWriter(run_dir).write_summary(rebuild_summary(run_dir, records))
    rewrite_report(run_dir, part, records)
    return diag


def write_diagnosis(run_dir: Path, diag: dict, probe: ProbeRunner) -> dict:
    """diagnosis.json (everything); returns the report's part (no per-request rows)."""
    diag["probes"] = dict(probe.counts)
    (Path(run_dir) / DIAGNOSIS_FILE).write_text(json.dumps(diag, indent=2, default=to_jsonable) + "\n")
    return {**{k: v for k, v in diag.items() if k != "rows"}, "file": DIAGNOSIS_FILE}


def rewrite_report(run_dir: Path, part: dict, records: list[dict]) -> None:
    summary = load_summary(run_dir / "summary.json")
    summary["diagnosis"] = part
    writer = RunWriter(run_dir)
    writer.write_summary(summary)
    writer.write_report(summary, records)


def card(diag: dict) -> str:
    """The readable lines the command prints: per arm, each cause's count and share, and the reading."""
    lines = ["Failure diagnosis (wrong answers per arm):"]
    for arm, a in diag["arms"].items():
        parts = [f"{c.replace('_', ' ')} {n} ({n / a['failures']:.0%})" for c, n in a["counts"].items() if n]
        lines.append(f"  {arm}: {a['failures']}/{a['requests']} wrong" + (f" = {', '.join(parts)}" if parts else "")
                     + f"; {a['reading']}")
    if diag["needs_probe"]:
        shown = ", ".join(diag["needs_probe"][:10]) + (" ..." if len(diag["needs_probe"]) > 10 else "")
        lines.append(f"  needs a probe ({len(diag['needs_probe'])} items): {shown}")
    lines.append(RULE)
    return "\n".join(lines)


def headline(diag: dict, run_dir: Path) -> dict:
    """The command's last stdout line (JSON)."""
    return {"run_dir": str(run_dir), "file": str(Path(run_dir) / DIAGNOSIS_FILE),
            "arms": {a: {"failures": m["failures"], "counts": m["counts"],
                         "model_share_of_classed": m["model_share_of_classed"]} for a, m in diag["arms"].items()},
            "needs_probe": len(diag["needs_probe"]), "probes": diag.get("probes", {})}
