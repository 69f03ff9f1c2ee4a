"""Which torch thread count runs a config fastest on this machine, idle and beside a busy process.

    flock -x /tmp/cpu.lock python scripts/bench_threads.py configs/quickstart.yaml --limit 8 --threads 1 2

Regime: the CPU fallback (no CUDA), one `python -m testbed run` per (threads, load) pair, each in its own
process so OpenMP starts fresh. "busy" starts one CPU-bound process (`while 1: pass`) first, which is what
a shared 2-core machine looks like when anything else runs: an OpenMP team as wide as the cores then
waits on a descheduled thread at every barrier. A run past --timeout is stopped and reported as such.
Per run: the process's wall time, its CPU-seconds (user + system, children included), and the arms'
summed wall time from summary.json. Prints a card, and as the last stdout line one JSON object.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(config: str, threads: int, busy: bool, limit: int, timeout: float, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_threads-"))
    cmd = [sys.executable, "-m", "testbed", "run", config, "--limit", str(limit), "--set", f"threads={threads}",
           "--out", str(out), "--quiet", *sum((["--set", s] for s in extra), [])]
    hog = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        status = f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)      # the run was reaped, the hog not yet: the run's alone
    if hog:
        hog.kill()
        hog.wait()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    runs = sorted(out.glob("*/summary.json"))
    arms_s = {}
    if runs:
        s = json.loads(runs[0].read_text())
        arms_s = {a: round(sum(r["wall_s"] for r in s["runs"] if r["arm"] == a), 1) for a in s["arms"]}
    return {"threads": threads, "load": "busy" if busy else "idle", "status": status, "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "arm_wall_s": arms_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is stopped")
    p.add_argument("--set", action="append", default=[], help="config overrides passed to every run")
    args = p.parse_args()
    rows = [run_once(args.config, t, busy, args.limit, args.timeout, args.set)
            for busy in (False, True) for t in args.threads]
    print(f"{args.config}, --limit {args.limit} {' '.join(args.set)}")
    for r in rows:
        print(f"  threads {r['threads']} {r['load']:>4}: {r['status']:<24} wall {r['wall_s']:>7.1f} s  "
              f"cpu {r['cpu_s']:>7.1f} s  arms {r['arm_wall_s']}")
    best = {load: min((r for r in rows if r["load"] == load and r["status"] == "ok"), key=lambda r: r["wall_s"],
                      default=None) for load in ("idle", "busy")}
    print(json.dumps({"config": args.config, "limit": args.limit, "rows": rows,
                      "fastest": {k: v and v["threads"] for k, v in best.items()}}))


if __name__ == "__main__":
    main()
