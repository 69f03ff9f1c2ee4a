"""docs/results.md: one table per config over every committed reference under results/reference/.

    write_index("results/reference", "docs/results.md")

Each table has one row per (reference, arm), the reference's first cell linking to its report; above it,
each reference's machine card, commit (dirty tree and unknown sha marked) and decision. A reference whose
summary.json is not a readable, whole file (a directory, a broken link, malformed; or gone where its
reference.json remains) is a UserError naming it: it used to drop out of the index unseen.
"""
import json
import os
from collections import defaultdict
from pathlib import Path

import pandas as pd

from testbed.errors import UserError
from testbed.report.compare import read_summary
from testbed.report.run_files import summary_file
from testbed.report.tables import comparison_table, to_markdown

COLUMNS = ["ok", "accuracy", "output tok/s", "req/s", "TTFT p50 ms", "TPOT p50 ms", "E2EL p90 ms", "peak MB",
           "$/success"]
HEADER = ("# Reference results\n\nCommitted runs of the shipped configs, written by `python -m testbed publish` "
          "(do not edit by hand). Each row links to its full report; ratios are to the config's baseline in the "
          "same run, with 95% paired bootstrap intervals, `*` where the interval excludes 1.0 (accuracy: the "
          "difference to the baseline, excluding 0). Check a new run against one with "
          "`python -m testbed compare RUN_DIR --against results/reference/<config>`.\n")
# publish --collect's staging directories (the new copy, the one it replaces): a crash can leave one behind
STAGING = (".tmp", ".old")
REFERENCE_FIX = ("restore the reference from git (git checkout -- {ref}), publish its run again (python -m testbed "
                 "publish --collect RUN_DIR), or remove the directory")


def _json(path: Path) -> dict:
    """A reference's env.json or reference.json; {} where it is missing, malformed or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def commit_text(env: dict) -> str:
    """The commit as the reports give it: marked when the tree was dirty or the sha is unknown."""
    sha = env.get("git_sha")
    if not sha:
        return "**unknown commit** (not run from a git checkout)"
    if sha.endswith("-dirty"):
        return f"`{sha.removesuffix('-dirty')[:12]}` **with uncommitted changes (dirty tree)**"
    return f"`{sha[:12]}`"


def machine_card(env: dict) -> str:
    """One line: device, CPU/GPU model, cores, threads, memory, library versions."""
    gpu = f"{env.get('gpu_name')}, " if env.get("gpu_name") else ""
    mem = f"{env['memory_total_mb'] / 1024:.0f} GiB RAM, " if env.get("memory_total_mb") else ""
    cpu = env.get("cpu_model", "?") + (f" ({env['cpu_id']})" if env.get("cpu_id") else "")
    return (f"{env.get('device', '?')}: {gpu}{cpu}, {env.get('cpu_count', '?')} cores, "
            f"{env.get('threads', '?')} torch threads, {mem}torch {env.get('torch')}, "
            f"transformers {env.get('transformers')}, python {env.get('python')}")


def _rows(ref: Path, summary: dict, link: str) -> pd.DataFrame:
    table = comparison_table(summary)
    table = table[[c for c in COLUMNS if c in table.columns]]
    table.insert(0, "reference", f"[{ref.name}]({link})")
    return table.reset_index().set_index(["reference", "arm"])


def _card(ref: Path, summary: dict, link: str) -> list[str]:
    env, meta = _json(ref / "env.json"), _json(ref / "reference.json")
    d = summary.get("decision") or {}
    return [f"- [{ref.name}]({link}) — run `{meta.get('run_dir', '?')}`, commit {commit_text(env)}; "
            f"{machine_card(env)}. Deploy: **{d.get('deploy') or 'none'}** ({d.get('deploy_reason', 'no decision')}). "
            f"{d.get('verdict_sentence', '')}".rstrip()]


def references(ref_root: Path) -> list[tuple[Path, dict]]:
    """Every reference directory under ref_root with its checked summary. A directory with neither summary.json
    nor reference.json is not a reference, nor is one publish was staging (STAGING); one whose summary.json is anything but a whole file is an error."""
    out = []
    for ref in sorted(p for p in ref_root.glob("*") if p.is_dir() and not p.name.endswith(STAGING)):
        try:
            path = summary_file(ref)        # UserError: a directory or a broken link in its place
            if path is None and (ref / "reference.json").exists():
                raise UserError(f"{ref}: a reference without summary.json (it would drop out of the index)")
            if path is not None:
                out.append((ref, read_summary(ref)))
        except UserError as e:      # a reference is restored or re-published, not re-run or rebuilt in place
            raise UserError(e.message, REFERENCE_FIX.format(ref=ref)) from None
    return out


def render_index(ref_root: str | Path, index: str | Path) -> str:
    """The Markdown of docs/results.md for every reference directory under ref_root."""
    ref_root, index = Path(ref_root), Path(index)
    by_config: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    for ref, summary in references(ref_root):
        by_config[summary.get("name", ref.name)].append((ref, summary))
    out = [HEADER]
    if not by_config:
        out.append("_No reference published yet._\n")
    for config, refs in sorted(by_config.items()):
        links = {ref: Path(os.path.relpath(ref / "report.md", index.parent)).as_posix() for ref, _ in refs}
        out += [f"## {config}", ""]
        for ref, summary in refs:
            out += _card(ref, summary, links[ref])
        table = pd.concat([_rows(ref, s, links[ref]) for ref, s in refs]).fillna("")
        out += ["", to_markdown(table), ""]
    return "\n".join(out)


def write_index(ref_root: str | Path, index: str | Path) -> Path:
    index = Path(index)
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(render_index(ref_root, index), encoding="utf-8")
    return index
