"""Why does testbed's client read a slower decode than `vllm bench serve` on vLLM's server? One server, passes
of each client in turn, and per pass what the server itself saw.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 /work/bin/cpu-excl python scripts/parity_probe.py --order v t l l t v

Regime: bench_parity.py's (vLLM's OpenAI server on one thread, 32 random 128-token prompts, 32 output
tokens, Poisson 1 req/s, max concurrency 8). Clients: v = `vllm bench serve`, t = testbed's openai
engine as bench_parity runs it, l = the same with the client's own periodic wake-ups cut (memory
sampler once a second instead of every 10 ms, step() polling every 50 ms instead of 2 ms).
Per pass: each client's TPOT p50 and ITL p50; the server's own mean ITL and decode time per request
from its engine core's clock (vLLM's /metrics, not affected by how fast a client reads); and, per
server process, CPU-seconds and the seconds its threads were runnable but waiting for a CPU
(/proc/<pid>/task/*/schedstat): CPU contention on the engine core shows there, not in CPU totals.
The last stdout line is JSON; everything lands in results/probe-<UTC>/.
"""
import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import bench_parity as bp  # noqa: E402


def server_series(port: int) -> dict[str, float]:
    """Sums over labels of the vLLM series this probe reads (name without labels -> value)."""
    from testbed.serve.metrics import scrape
    out: dict[str, float] = {}
    for k, v in scrape(f"http://127.0.0.1:{port}/metrics").items():
        name = k.split("{")[0]
        if name.endswith(("_sum", "_count")) and ("inter_token" in name or "decode_time" in name
                                                  or "time_to_first" in name):
            out[name] = out.get(name, 0.0) + v
    return out


def schedstat(pid: int) -> dict[str, float]:
    """{'cpu_s', 'wait_s'} summed over a process's threads: on-CPU and runnable-but-waiting seconds."""
    run = wait = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            r, w, _ = (Path(task) / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        run, wait = run + int(r) / 1e9, wait + int(w) / 1e9
    return {"cpu_s": run, "wait_s": wait}


def server_procs(pid: int) -> dict[str, dict[str, float]]:
    procs = {"api_server": pid}
    for i, c in enumerate(psutil.Process(pid).children(recursive=True)):
        procs[f"child{i}:{c.name()}"] = c.pid
    out = {}
    for name, p in procs.items():
        try:
            out[name] = schedstat(p)
        except OSError:
            continue
    return out


def diff(a: dict, b: dict) -> dict:
    return {k: (diff(a[k], b[k]) if isinstance(b[k], dict) else round(b[k] - a[k], 4)) for k in b if k in a}


def lean_client(port, prompts, out, args):
    """testbed's client with its own periodic wake-ups cut (see the docstring)."""
    import testbed.metrics.memory as mem
    real = mem.MemoryTracker.__init__

    def init(self, device="cpu", interval_s=1.0, children_every_s=1.0):
        real(self, device, 1.0, children_every_s)
    mem.MemoryTracker.__init__ = init
    import testbed.config as tc
    validate = tc.validate

    def lean_validate(raw):
        raw["arms"]["client"]["poll_s"] = 0.05
        return validate(raw)
    tc.validate = lean_validate
    try:
        return bp.run_testbed_client(port, prompts, out, args)
    finally:
        mem.MemoryTracker.__init__ = real
        tc.validate = validate


def client_stats(kind: str, result) -> dict:
    if kind == "v":
        tp = [(l - t) / (n - 1) * 1e3 for l, t, n in zip(result["latencies"], result["ttfts"], result["output_lens"])]
        itl = np.concatenate([np.array(x) for x in result["itls"]]) * 1e3
        return {"tpot_p50": float(np.median(tp)), "itl_p50": float(np.median(itl)), "itl_mean": float(itl.mean()),
                "client_cpu_s": round(result["_client_cpu_s"], 2)}
    m, _, records = result
    ok = [r for r in records if r["status"] == "ok"]
    tp = [(r["token_times_s"][-1] - r["first_token_s"]) / (r["output_tokens"] - 1) * 1e3 for r in ok]
    itl = np.concatenate([np.diff(r["chunk_times_s"]) for r in ok]) * 1e3
    return {"tpot_p50": float(np.median(tp)), "itl_p50": float(np.median(itl)), "itl_mean": float(itl.mean()),
            "client_cpu_s": round(m["_client_cpu_s"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--order", nargs="+", default=["v", "t", "l", "l", "t", "v"], choices=["v", "t", "l"])
    ap.add_argument("--prompts", type=int, default=32)
    args_in = ap.parse_args()
    args = argparse.Namespace(model="smollm2-135m", prompts=args_in.prompts, input_len=128, output_len=32, rate=1.0,
                              max_concurrency=8, seed=0, server_threads=1, vllm_bind="0")
    out = ROOT / "results" / f"probe-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True)
    prompts, model_dir = bp.write_prompts(out, args)
    t_all = time.perf_counter()
    proc, port = bp.start_server("vllm", out, model_dir, args)
    passes = []
    try:
        bp.run_testbed_client(port, prompts, out / "warmup", args)
        for i, kind in enumerate(args_in.order):
            s0, p0, t0 = server_series(port), server_procs(proc.pid), time.perf_counter()
            if kind == "v":
                res = bp.run_vllm_client(port, prompts, model_dir, out, f"vllm-p{i}", args)
            else:
                res = (lean_client if kind == "l" else bp.run_testbed_client)(port, prompts, out / f"p{i}-{kind}", args)
            s1, p1 = server_series(port), server_procs(proc.pid)
            ds = diff(s0, s1)
            srv = {k.replace("vllm:", "").replace("_seconds", ""): round(ds[k] / ds[k.replace("_sum", "_count")] * 1e3, 3)
                   for k in ds if k.endswith("_sum") and ds.get(k.replace("_sum", "_count"))}
            row = {"pass": i, "client": kind, "wall_s": round(time.perf_counter() - t0, 1),
                   **{k: round(v, 2) for k, v in client_stats(kind, res).items()},
                   "server_ms": srv, "server_procs": diff(p0, p1)}
            passes.append(row)
            print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    summary = {"probe": "parity", "out": str(out), "wall_s": round(time.perf_counter() - t_all, 1), "passes": passes}
    (out / "probe.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
