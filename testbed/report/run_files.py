"""The shapes a run directory's summary.json and requests.jsonl must have for the readers (report, compare,
export, diagnose, publish), checked with jsonschema where the files are read.

    summary = load_summary(run_dir / "summary.json")        # parsed and checked, or UserError
    cfg = load_run_config(run_dir / "config.yaml")           # a mapping with arms, or UserError
    check_record(rec, "results/x/requests.jsonl:7")          # one record, or UserError naming line and field
    check_counts(path, summary, records)                      # as many records per pass as the summary counted
    summary_file(run_dir), records_file(run_dir)              # the file, None when absent, UserError if a directory
    plots_dir(run_dir)                                        # run_dir/plots, UserError where a file holds its place

A damaged file, or one from another testbed version, is one UserError naming the file (and line) and the
field, not a KeyError or TypeError from deep inside a report; so is a directory where summary.json or
requests.jsonl goes, or a file where plots/ goes (once "missing" to a reader and a traceback to a writer).
Lenient where older runs differ: only the keys the readers index are required; any other known key, where
present, must have the type the writer gives it (a summary's ratios and intervals are numbers; an arm's metrics
are flat values, not objects, and include its n_requests: an empty arm, {}, is refused by every reader alike).
"""
import json
from pathlib import Path

import jsonschema

from testbed.errors import UserError
from testbed.safe_yaml import load_yaml

NUMBER, NUMBER_OR_NULL = {"type": "number"}, {"type": ["number", "null"]}
TIMES = {"type": ["array", "null"], "items": NUMBER}
RATE = {"type": ["string", "number", "null"]}
RECORD = {"type": "object", "required": ["arm", "item_id", "arrival_s"], "properties": {
    "arm": {"type": "string"}, "item_id": {"type": "string"}, "request_id": {"type": ["string", "null"]},
    "category": {"type": ["string", "null"]}, "status": {"type": ["string", "null"]}, "repeat": {"type": "integer"},
    "rate": RATE, "block": {"type": ["integer", "null"]}, "prompt_tokens": {"type": ["integer", "null"]},
    "output_tokens": {"type": ["integer", "null"]}, "arrival_s": NUMBER, "first_token_s": NUMBER_OR_NULL,
    "finish_s": NUMBER_OR_NULL, "send_s": NUMBER_OR_NULL, "token_times_s": TIMES, "chunk_times_s": TIMES,
    "output_text": {"type": ["string", "null"]}, "score": NUMBER_OR_NULL, "correct": {"type": ["boolean", "null"]}}}
# an arm's row: flat metrics (lists: per repeat, per draft position); every ratio and interval a number; the
# request count every writer gives it (an empty row, {}, is an arm that measured nothing, not one that passed)
ARM_ROW = {"type": "object", "required": ["n_requests"],
           "properties": {k: {"type": "integer"} for k in ("n_requests", "n_ok", "n_failed")},
           "patternProperties": {"(_vs_baseline|_ci_low|_ci_high)$": NUMBER},
           "additionalProperties": {"type": ["number", "string", "boolean", "null", "array"]}}
PASS = {"type": "object", "required": ["arm", "repeat", "rate", "wall_s"], "properties": {
    "arm": {"type": "string"}, "repeat": {"type": "integer"}, "rate": RATE, "wall_s": NUMBER, "n": {"type": "integer"}}}
# every summary the runner (or a rebuild) writes says whether it is complete: one that does not cannot be read as whole
SUMMARY = {"type": "object", "required": ["arms", "incomplete"], "properties": {
    "name": {"type": "string"}, "baseline": {"type": ["string", "null"]}, "incomplete": {"type": "boolean"},
    "arms": {"type": "object", "additionalProperties": ARM_ROW}, "runs": {"type": "array", "items": PASS}}}
_RECORD, _SUMMARY = jsonschema.Draft202012Validator(RECORD), jsonschema.Draft202012Validator(SUMMARY)
SUMMARY_FIX = ("restore it or re-run the experiment; or move summary.json aside and `report` rebuilds it from "
               "requests.jsonl (marked incomplete)")
RECORDS_FIX = "restore the file or re-run the experiment"
COUNTS_FIX = ("restore requests.jsonl; or move summary.json aside (`report` rebuilds it from the records, marked "
              "incomplete)")
PLOTS_FIX = "move it aside; `python -m testbed diagnose RUN_DIR --no-probe` writes the report and its plots again"
FIXES = {"summary.json": SUMMARY_FIX, "requests.jsonl": RECORDS_FIX}
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def run_file(run_dir: str | Path, name: str) -> Path | None:
    """run_dir/name where it is a file, None where nothing is there; UserError where something else is (a
    directory, a broken link): a damaged run directory, which readers took for a missing file and writers crashed on."""
    path = Path(run_dir) / name
    if path.is_file():
        return path
    if not path.exists() and not path.is_symlink():
        return None
    what = "a directory" if path.is_dir() else "a broken link" if not path.exists() else "not a regular file"
    raise UserError(f"{path}: {what}, not a file (a damaged run directory)",
                    FIXES.get(name, f"move it aside; the run's {name} is written there"))


def summary_file(run_dir: str | Path) -> Path | None:
    """run_dir/summary.json, None where the run wrote none (killed), UserError where a directory sits there."""
    return run_file(run_dir, "summary.json")


def records_file(run_dir: str | Path) -> Path | None:
    """run_dir/requests.jsonl, None where there is none, UserError where a directory sits there."""
    return run_file(run_dir, "requests.jsonl")


def plots_dir(run_dir: str | Path) -> Path:
    """run_dir/plots (which may not exist yet), UserError where a file holds its place."""
    path = Path(run_dir) / "plots"
    if path.is_dir() or not (path.exists() or path.is_symlink()):
        return path
    raise UserError(f"{path}: a file where the plots directory goes (a damaged run directory)", PLOTS_FIX)


def load_summary(path: Path) -> dict:
    """summary.json parsed (a UTF-8 BOM allowed) and checked against SUMMARY."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, RecursionError) as e:       # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"{path}: malformed JSON ({e})", SUMMARY_FIX) from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror})", SUMMARY_FIX) from None
    _check(_SUMMARY, summary, str(path), SUMMARY_FIX)
    return summary


def load_run_config(path: Path) -> dict:
    """A run's config.yaml (the resolved config `run` wrote) as a mapping, or UserError naming the file."""
    fix = "restore config.yaml from the run's config, or re-run the experiment"
    try:
        raw = load_yaml(path.read_text(encoding="utf-8-sig"), str(path), fix)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", fix) from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror})", fix) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("arms"), dict):
        raise UserError(f"{path}: not a run's config (no 'arms' mapping)", fix)
    return raw


def check_record(rec: object, at: str) -> None:
    """UserError naming `at` (file:line) and the field where a requests.jsonl record does not fit RECORD."""
    _check(_RECORD, rec, at, RECORDS_FIX)


def check_counts(path: Path, summary: dict, records: list[dict]) -> None:
    """UserError where requests.jsonl (`path`) holds another number of records for a pass (arm, repeat, rate) than
    summary.json counted: a torn or doubled file, whose figures would be wrong. A summary without per-pass counts
    (from before runs had n) is checked per arm: an arm it measured must have records, where other arms have some."""
    runs = summary.get("runs") or []
    if not runs or not all("n" in run for run in runs):     # a rebuilt summary, or one from before runs had n
        _check_arms(path, summary, records)
        return
    counted: dict[tuple, int] = {}
    for run in runs:
        key = (run["arm"], run["repeat"], run["rate"])
        counted[key] = counted.get(key, 0) + run["n"]
    held: dict[tuple, int] = {}
    for rec in records:
        key = (rec["arm"], rec.get("repeat", 0), rec.get("rate"))
        held[key] = held.get(key, 0) + 1
    for key in dict.fromkeys([*counted, *held]):
        if held.get(key, 0) != counted.get(key, 0):
            raise UserError(f"{path}: {held.get(key, 0)} records of arm {key[0]!r} (repeat {key[1]}, rate {key[2]}) "
                            f"where summary.json counted {counted.get(key, 0)}", COUNTS_FIX)


def _check_arms(path: Path, summary: dict, records: list[dict]) -> None:
    held = {rec["arm"] for rec in records}
    empty = [arm for arm, row in (summary.get("arms") or {}).items() if row.get("n_requests") and arm not in held]
    if held and empty:      # no records at all is a run that wrote none (checked where records are needed)
        raise UserError(f"{path}: no records of arm {empty[0]!r} where summary.json counted "
                        f"{summary['arms'][empty[0]]['n_requests']} (other arms have records)",
                        COUNTS_FIX)


def _check(validator, doc: object, at: str, fix: str) -> None:
    if validator.is_valid(doc):         # the fast path: most files are whole
        return
    errors = list(validator.iter_errors(doc))
    # a wrong type or value names the field; a missing key only where nothing else is wrong (a row of nested
    # metrics lacks n_requests too, but "arms.x.metrics: is an object" says what happened)
    e = jsonschema.exceptions.best_match([x for x in errors if x.validator != "required"] or errors)
    field = ".".join(map(str, e.absolute_path))
    raise UserError(f"{at}: {field + ': ' if field else ''}{_problem(e)} (a damaged file, or one written by "
                    "another testbed version)", fix)


def _problem(e: jsonschema.ValidationError) -> str:
    if e.validator == "type":
        want = e.validator_value if isinstance(e.validator_value, str) else " or ".join(e.validator_value)
        return f"is {JSON_TYPES.get(type(e.instance), 'a number')}, expected {want}"
    if e.validator == "required" and e.instance == {}:
        return f"is an empty object, expected {', '.join(map(repr, e.validator_value))} at least"
    return e.message[:200]
