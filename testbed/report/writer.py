"""Writes one run directory (DESIGN §3): config.yaml, env.json, requests.jsonl, summary.json/.csv,
report.md, report.html and plots/*.png.

    writer = RunWriter(create_run_dir("results", cfg.name))
    writer.write_config(cfg.model_dump()); writer.write_env(collect_env())
    writer.append_record(rec)                       # once per request, flushed and fsynced
    writer.write_summary(summary)                   # {"name", "baseline", "incomplete", "arms", "by_category", "notes"}
    writer.write_report(summary, records)
    writer.check_outputs("diagnosis.json")         # before rewriting a finished run: UserError if one can't be written

requests.jsonl is appended and synced per line, so an interrupted run keeps every finished request.
"""
import dataclasses
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from testbed.errors import UserError
from testbed.report.decision import decide
from testbed.report.html import render_html
from testbed.report.markdown import render_markdown
from testbed.report.plots import make_plots
from testbed.report.run_files import plots_dir, run_file
from testbed.report.tables import summary_frame


def to_jsonable(obj: Any) -> Any:
    """json.dumps fallback for numpy scalars and arrays, paths, sets and dataclasses."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def check_output_dir(output_dir: str | Path) -> Path:
    """UserError unless run directories can be made under `output_dir`; nothing is created here."""
    out = Path(output_dir)
    fix = "give --out (or output_dir) a directory you can write, e.g. results"
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"output directory {out}: {existing} is a file, not a directory", fix)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"output directory {out}: {existing} is not writable", fix)
    return out


def create_run_dir(output_dir: str | Path, name: str, now: datetime | None = None) -> Path:
    """Make results/<name>-<UTC timestamp>, or -2, -3 ... when taken: created exclusively (mkdir fails if
    the directory exists), so runs started in the same second never share a directory."""
    out = check_output_dir(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"output directory {out} cannot be created ({e.strerror})", "give --out a writable path") from None
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 10_000):
        path = out / (f"{name}-{stamp}" if n == 1 else f"{name}-{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:        # a directory that takes no new entries (/proc; read-only mounts, as root)
            raise UserError(f"output directory {out}: cannot create {path.name} in it ({e.strerror})",
                            "give --out a writable path") from None
    raise UserError(f"{out}: 10,000 runs named {name}-{stamp} already", "clear out old runs")


def _write_atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


OUTPUTS = ("config.yaml", "env.json", "requests.jsonl", "summary.json", "summary.csv", "report.md", "report.html")


class RunWriter:
    """Owns the files of one run directory; creates it on construction."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def check_outputs(self, *also: str) -> None:
        """UserError naming the first output whose place something else holds (a directory where summary.json
        goes, a file where plots/ goes), before anything is written: a rewrite of an existing run (diagnose) that
        failed there would leave a traceback and a summary without its report. `also`: the caller's own files."""
        for name in (*OUTPUTS, *also):
            run_file(self.run_dir, name)
        plots_dir(self.run_dir)

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def write_config(self, cfg: dict) -> Path:
        plain = json.loads(json.dumps(cfg, default=to_jsonable))    # YAML-safe plain types only
        return _write_atomic(self.path("config.yaml"), yaml.safe_dump(plain, sort_keys=False))

    def write_env(self, env: dict) -> Path:
        return _write_atomic(self.path("env.json"), json.dumps(env, indent=2, default=to_jsonable) + "\n")

    def append_record(self, rec: dict) -> None:
        line = json.dumps(rec, default=to_jsonable, ensure_ascii=False)
        with open(self.path("requests.jsonl"), "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite_records(self, records: list[dict]) -> Path:
        """requests.jsonl again, whole (fields filled after the run: a rotated block's match to the baseline)."""
        lines = "".join(json.dumps(r, default=to_jsonable, ensure_ascii=False) + "\n" for r in records)
        return _write_atomic(self.path("requests.jsonl"), lines)

    def write_summary(self, summary: dict) -> list[Path]:
        """summary.json (the whole dict) and summary.csv (one row per arm, flat metrics); the decision is
        (re)derived here, so every writer of a summary (run, diagnose, rebuild) states it."""
        summary["decision"] = decide(summary)
        js = _write_atomic(self.path("summary.json"), json.dumps(summary, indent=2, default=to_jsonable) + "\n")
        csv = _write_atomic(self.path("summary.csv"), summary_frame(summary).to_csv())
        return [js, csv]

    def write_report(self, summary: dict, records: list[dict]) -> list[Path]:
        """plots/*.png, report.md and report.html; returns every path written."""
        plots = make_plots(summary, records, self.run_dir)
        md = _write_atomic(self.path("report.md"), render_markdown(summary, plots, self.run_dir))
        page = _write_atomic(self.path("report.html"), render_html(summary, plots))
        return [*plots, md, page]
