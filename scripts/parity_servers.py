"""bench_parity.py's servers: `testbed serve` or vLLM's OpenAI server started on loopback, where --pin
puts each process, and what the server's own /metrics say (its TTFT and TPOT sums and counts)."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

from testbed.metrics.cpu import thread_cpus  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, limit_s: float = 600) -> None:
    t = time.time()
    while time.time() - t < limit_s:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready ({url})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"server not ready after {limit_s:.0f} s: {url}")


def start_server(kind: str, out: Path, model_dir: str, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = (out / f"server-{kind}.log").open("w")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.server_threads), "PYTHONPATH": str(ROOT)}
    if kind == "testbed":
        cfg = out / "serve.yaml"
        cfg.write_text(json.dumps({"name": "parity", "model": {"id": args.model}, "device": "cpu",
                                   "threads": args.server_threads, "sampling": {"temperature": 0},
                                   "workload": {"max_new_tokens": args.output_len}, "baseline": "paged",
                                   "arms": {"paged": {"engine": "paged", "max_num_seqs": 64}}}))
        cmd = [PY, "-m", "testbed", "serve", str(cfg), "--arm", "paged", "--port", str(port), "--max-queue", "4096"]
        ready = f"http://127.0.0.1:{port}/health"
    else:
        env.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND=args.vllm_bind)
        cmd = [PY, str(ROOT / "scripts/vllm_cli.py"), "serve", model_dir, "--served-model-name", args.model,
               "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048"]
        ready = f"http://127.0.0.1:{port}/v1/models"
    if args.pin and kind == "vllm":        # the worker (the forward) binds itself to the server CPU
        env["VLLM_CPU_OMP_THREADS_BIND"] = str(SERVER_CPU)
    own_cpu = (lambda: os.sched_setaffinity(0, {SERVER_CPU})) if args.pin and kind == "testbed" else None
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=own_cpu)
    wait_ready(ready, proc)
    (out / f"server-{kind}-threads.txt").write_text(thread_cpus(proc.pid))
    return proc, port


# --pin: the server's compute alone on one CPU; everything else (both clients, this script, vLLM's
# API server and engine-core loop, which spins on sched_yield while its worker computes) on the other.
# Unpinned, a client's wake-ups land wherever the kernel finds room, the forward's CPU included, so
# the server's own decode speed followed whichever client ran (docs/parity_cpu.md).
SERVER_CPU, CLIENT_CPU = 1, 0


def server_sums(port: int, *series: str) -> list[tuple[float, float]]:
    """Per series, (sum of seconds, count) so far from the server's /metrics, summed over labels:
    `time_to_first_token_seconds` is testbed serve's `testbed_time_to_first_token_seconds_*` and
    vLLM's `vllm:time_to_first_token_seconds_*` histogram; `request_time_per_output_token_seconds`
    is vLLM's per-request TPOT taken on its engine core's clock (testbed serve has none: (0, 0))."""
    from testbed.serve.metrics import scrape
    found = scrape(f"http://127.0.0.1:{port}/metrics")
    total = lambda end: sum(v for k, v in found.items() if k.split("{")[0].endswith(end))  # noqa: E731
    return [(total(f"{name}_sum"), total(f"{name}_count")) for name in series]


SERVER_SERIES = ("time_to_first_token_seconds", "request_time_per_output_token_seconds")


def mean_ms(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    n = after[1] - before[1]
    return round((after[0] - before[0]) / n * 1e3, 2) if n else None
