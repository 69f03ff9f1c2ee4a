"""CPU time an arm spends: this process and its children (vLLM's engine core and worker, when
it runs them), user + system seconds. On a shared 2-core machine CPU-seconds per output token
move far less with background load than wall time, so reports give both.

    t0 = cpu_seconds(); run_arm(); cpu_metrics(cpu_seconds() - t0, records)
"""
import psutil


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its live descendants so far.

    A child that exited during the interval takes its time with it: engines that spawn workers
    keep them for the engine's life, which spans the arm's run.
    """
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:      # a child ended between listing and reading
            continue
        total += t.user + t.system
    return total


def cpu_metrics(cpu_s: float, records: list[dict]) -> dict[str, float]:
    """`cpu_seconds` and `cpu_s_per_output_token` (over the requests that finished)."""
    out = {"cpu_seconds": cpu_s}
    tokens = sum(r.get("output_tokens") or 0 for r in records if r.get("status") == "ok")
    if tokens:
        out["cpu_s_per_output_token"] = cpu_s / tokens
    return out
