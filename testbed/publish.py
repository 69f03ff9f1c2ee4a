"""Committed reference results and their index: `python -m testbed publish [CONFIG ...] [--collect RUN_DIR ...]`.

    publish_configs(["configs/quickstart.yaml"])          # runs each config, then collects the run
    collect("results/quickstart-20261201T220000Z")        # -> results/reference/quickstart/
    write_index()                                         # docs/results.md from every reference

A reference is what a reader needs to check a figure: report.md (headed by its provenance: commit,
dirty tree or unknown sha, machine), summary.json, summary.csv, config.yaml and env.json (what
`compare` checks against), plots/, diagnosis.json, and requests.jsonl (gzipped above GZIP_ABOVE bytes).
CPU runs land in results/reference/<config>/, CUDA runs beside them in results/reference/<config>-cuda/.
"""
import gzip
import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from testbed.errors import UserError
from testbed.report.compare import read_env, read_records, read_summary
from testbed.report.reference_index import STAGING, commit_text, machine_card, write_index
from testbed.report.run_files import check_counts, plots_dir

REFERENCE_DIR = Path("results/reference")
INDEX = Path("docs/results.md")
GZIP_ABOVE = 1_000_000
COPIED = ("summary.json", "summary.csv", "config.yaml", "env.json", "diagnosis.json")


def reference_name(summary: dict, env: dict) -> str:
    return summary["name"] + ("-cuda" if str(env.get("device", "")).startswith("cuda") else "")


def _provenance(run_dir: Path, env: dict) -> str:
    return (f"> Reference run `{run_dir.name}` at commit {commit_text(env)}. Machine: {machine_card(env)}. "
            f"Index: [docs/results.md](../../../docs/results.md).")


def report_with_provenance(run_dir: Path, env: dict) -> str:
    """The run's report.md with the reference's provenance line after its title (scripts/rederive_drift.py
    re-heads a re-derived report with it)."""
    try:
        lines = (run_dir / "report.md").read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise UserError(f"{run_dir / 'report.md'}: not UTF-8 text",
                        f"restore it, or rewrite it: python -m testbed diagnose {run_dir} --no-probe") from None
    return "\n".join(lines[:1] + ["", _provenance(run_dir, env)] + lines[1:])


def collect(run_dir: str | Path, dest_root: str | Path = REFERENCE_DIR) -> Path:
    """Copy one finished run into dest_root/<config>[-cuda]/, replacing what was there."""
    run_dir = Path(run_dir)
    summary, env = read_summary(run_dir), read_env(run_dir)
    if summary.get("incomplete"):
        raise UserError(f"{run_dir}: an incomplete run", "publish a run that finished every arm")
    if not summary.get("name"):     # the reference's directory is named after it
        raise UserError(f"{run_dir / 'summary.json'}: no 'name'", "restore the file, or re-run the experiment")
    check_counts(run_dir / "requests.jsonl", summary, read_records(run_dir))     # a reference's records are whole
    if not (run_dir / "report.md").is_file():
        raise UserError(f"{run_dir}: no report.md", "give a run directory written by `testbed run`")
    plots = plots_dir(run_dir)      # a file there: the reference's report would link to plots it lacks
    dest = Path(dest_root) / reference_name(summary, env)
    tmp = dest.with_name(dest.name + STAGING[0])
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, tmp / name)
    if plots.is_dir():
        shutil.copytree(plots, tmp / "plots")
    (tmp / "report.md").write_text(report_with_provenance(run_dir, env), encoding="utf-8")
    _copy_records(run_dir / "requests.jsonl", tmp)
    (tmp / "reference.json").write_text(json.dumps(
        {"run_dir": run_dir.name, "collected_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
         "git_sha": env.get("git_sha"), "dirty": str(env.get("git_sha") or "").endswith("-dirty"),
         "sha_known": bool(env.get("git_sha"))}, indent=2) + "\n")
    old = dest.with_name(dest.name + STAGING[1])     # the reference it replaces stays until the new one is in
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def _copy_records(src: Path, dest_dir: Path) -> None:
    if not src.is_file():
        return
    if src.stat().st_size <= GZIP_ABOVE:
        shutil.copy2(src, dest_dir / src.name)
        return
    with open(src, "rb") as f, gzip.GzipFile(dest_dir / (src.name + ".gz"), "wb", mtime=0) as g:
        shutil.copyfileobj(f, g)


def publish_configs(configs: list[str], out: str = "results") -> list[Path]:
    """Run each config (CPU fallback where there is no CUDA) and return the run directories."""
    from testbed.config import load_config
    from testbed.env import git_sha
    from testbed.plugins import load_plugins
    from testbed.runner import Experiment
    load_plugins()      # engines and sections registered before load_config validates the arms
    if configs and str(git_sha() or "").endswith("-dirty"):     # --collect alone runs nothing here
        print("[testbed] publish: the tree has uncommitted changes; the references will say so", file=sys.stderr)
    return [Experiment(load_config(c), progress=True).run(out) for c in configs]


# needs a server started by hand (its header says how): not runnable by publish alone
NEEDS_SERVER = ("remote.yaml",)


def shipped_configs(root: str | Path = "configs") -> list[str]:
    """Every config publish runs by default: configs/*.yaml but those that need a running server."""
    return sorted(str(p) for p in Path(root).glob("*.yaml") if p.name not in NEEDS_SERVER)


def check_destinations(dest_root: str | Path, index: str | Path) -> None:
    """UserError naming --dest or --index where it is empty (Path("") is the working directory, where references
    would land beside the code) or where a directory or file holds the other's place."""
    dest_fix = "give a directory for the references, e.g. --dest results/reference"
    index_fix = "give the index page's file path, e.g. --index docs/results.md"
    if not str(dest_root).strip():
        raise UserError("--dest is empty", dest_fix)
    if Path(dest_root).exists() and not Path(dest_root).is_dir():
        raise UserError(f"--dest {dest_root}: a file, not a directory", dest_fix)
    if not str(index).strip():
        raise UserError("--index is empty", index_fix)
    if Path(index).is_dir():
        raise UserError(f"--index {index}: a directory, not a file", index_fix)


def publish(configs: list[str], collect_dirs: list[str], dest_root=REFERENCE_DIR, index=INDEX) -> list[Path]:
    """Run the configs (none given and nothing to collect: every shipped config), collect every run, rewrite the index."""
    check_destinations(dest_root, index)      # before any run: a late failure would leave references unindexed
    if not configs and not collect_dirs:
        configs = shipped_configs()
    for c in configs:
        if not Path(c).is_file():
            raise UserError(f"config {c}: no such file", "give a config path, e.g. configs/quickstart.yaml")
    for d in collect_dirs:
        if not Path(d).is_dir():
            raise UserError(f"--collect {d}: no such directory", "give run directories written by `testbed run`")
    runs = [Path(d) for d in collect_dirs] + publish_configs(configs)
    refs = [collect(r, dest_root) for r in runs]
    write_index(dest_root, index)
    return refs
