"""CPU time an arm spends: this process and its children (vLLM's engine core and worker, when
it runs them), user + system seconds. On a shared 2-core machine CPU-seconds per output token
move far less with background load than wall time, so reports give both.

    t0 = cpu_seconds(); run_arm(); cpu_metrics(cpu_seconds() - t0, records)

The other readers serve benchmarks that watch a server in another process tree
(scripts/bench_parity.py): the whole machine's busy time, the time a tree's threads waited for a
CPU, and the CPUs each of its threads may run on.
"""
from pathlib import Path

import psutil


def _tree(pid: int | None) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (default: this one) and its live descendants so far.

    A child that exited during the interval takes its time with it: engines that spawn workers
    keep them for the engine's life, which spans the arm's run.
    """
    total = 0.0
    for proc in _tree(pid):
        try:
            t = proc.cpu_times()
        except psutil.Error:      # a child ended between listing and reading
            continue
        total += t.user + t.system
    return total


def busy_cpu_s() -> tuple[float, float]:
    """(CPU-seconds the whole machine spent not idle so far, every process and core; of them, stolen by
    the hypervisor for other guests): the second says when the host, not this machine, was busy."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0), getattr(t, "steal", 0.0)


def runqueue_wait_s(pid: int, proc_root: Path = Path("/proc")) -> float:
    """Seconds the threads of a process and its descendants spent runnable but waiting for a CPU so
    far (/proc/<pid>/task/*/schedstat, second field): CPU taken from a server by other processes
    shows here and not in its CPU-seconds (vLLM's workers spin while they wait, so those stay flat)."""
    total = 0
    for p in _tree(pid):
        for task in (proc_root / str(p.pid) / "task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):      # a thread that ended meanwhile
                continue
    return total / 1e9


def thread_cpus(pid: int) -> str:
    """One line per thread of a process tree: pid, tid, name, the CPUs it may run on."""
    lines = []
    for p in _tree(pid):
        for task in sorted(Path(f"/proc/{p.pid}/task").glob("*")):
            try:
                status = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines() if ":\t" in line)
            except OSError:                # a thread that ended meanwhile
                continue
            lines.append(f"{p.pid} {task.name} {status['Name'].strip()} cpus={status['Cpus_allowed_list'].strip()}")
    return "\n".join(lines) + "\n"


def cpu_metrics(cpu_s: float, records: list[dict]) -> dict[str, float]:
    """`cpu_seconds` and `cpu_s_per_output_token` (over the requests that finished)."""
    out = {"cpu_seconds": cpu_s}
    tokens = sum(r.get("output_tokens") or 0 for r in records if r.get("status") == "ok")
    if tokens:
        out["cpu_s_per_output_token"] = cpu_s / tokens
    return out
