"""HTTP serving overhead: the same prompts in process vs through `testbed serve` + the openai engine.

Regime: SmolLM2-135M (or --model), greedy, hf engine at batch 1, CPU, one torch thread per
engine (on a shared 2-core box, 2-thread OpenMP regions stall on preempted threads and make
timings erratic). The server runs as a subprocess on loopback (`python -m testbed serve`),
exactly as a user would start it.

Phase 1, TTFT: each golden prompt runs alone, in process and over HTTP, alternating which goes
first. TTFT is arrival -> first token for both (for HTTP: the first streamed chunk parsed by the
client), so the difference is what HTTP, JSON, SSE and the server's tokenisation add.
Goal: p50 difference <= 10 ms. On a contended CPU the prefill itself varies by more than that
from one run to the next, so the card also gives the HTTP layer alone per request: the
client's TTFT minus the server's own TTFT for the same request (from /metrics), which does
not depend on how long the model took.
Phase 2, load: 64 concurrent streaming clients (the openai engine, 64 connections) against the
same server. Goal: zero errors. Afterwards /metrics must show nothing running or waiting.

    python scripts/bench_serve.py --limit 12 --max-new-tokens 16

Prints a card, then one line of JSON (the last line of stdout).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import torch

from testbed.config import ModelSpec
from testbed.drive import drive
from testbed.engines.hf import HFEngine, HFOptions
from testbed.engines.openai import OpenAIEngine, OpenAIOptions
from testbed.models import load_model
from testbed.request import Request
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, max_new: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "testbed", "serve", str(ROOT / "configs" / "remote.yaml"), "--arm", "local",
           "--port", str(port), "--device", "cpu", "--set", f"model.id={model}", "--set", "threads=1",
           "--set", f"workload.max_new_tokens={max_new}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 300 s")


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines() if line[:1] != "#")}


def one_at_a_time(engine, prompts, lm, max_new) -> dict[str, Request]:
    """Closed loop at concurrency 1: the request is built (rendered, tokenised) at its arrival, as the runner does."""
    done: dict[str, Request] = {}

    def make(p, arrival):
        text, ids = render_prompt(lm.tokenizer, p[1])
        return Request(id=p[0], prompt_ids=ids, prompt_text=text, max_new_tokens=max_new, arrival_time=arrival,
                       eos_token_ids=lm.eos_token_ids)
    drive(engine, prompts, make, None, 1, lambda r: done.setdefault(r.id, r))
    return done


def ttft_ms(r: Request) -> float:
    return (r.token_times[0] - r.arrival_time) * 1e3


def phase_ttft(lm, port, prompts, max_new) -> dict:
    local_engine = HFEngine(lm, HFOptions(batch_size=1))
    remote_engine = OpenAIEngine(lm, OpenAIOptions(base_url=f"http://127.0.0.1:{port}/v1", concurrency=1,
                                                   extra_body={"return_token_ids": True}))
    local, remote, server = {}, {}, {}
    key = "testbed_time_to_first_token_seconds_sum"
    for i, p in enumerate(prompts):          # alternate the order so drift hits both alike
        for path in (["local", "http"] if i % 2 == 0 else ["http", "local"]):
            if path == "local":
                local.update(one_at_a_time(local_engine, [p], lm, max_new))
                continue
            before = scrape(port)[key]
            remote.update(one_at_a_time(remote_engine, [p], lm, max_new))
            server[p[0]] = (scrape(port)[key] - before) * 1e3    # the server's own arrival -> first token
    ok = [k for k in local if local[k].token_times and remote[k].token_times]
    lt, rt = [ttft_ms(local[k]) for k in ok], [ttft_ms(remote[k]) for k in ok]
    http_only = [ttft_ms(remote[k]) - server[k] for k in ok]
    match = sum(local[k].output_ids == remote[k].output_ids for k in ok) / max(len(ok), 1)
    return {"n": len(ok), "ttft_ms_p50_local": statistics.median(lt), "ttft_ms_p50_http": statistics.median(rt),
            "ttft_p50_diff_ms": statistics.median(rt) - statistics.median(lt),
            "ttft_paired_diff_ms_p50": statistics.median(b - a for a, b in zip(lt, rt)),
            "http_layer_ms_p50": statistics.median(http_only), "http_layer_ms_max": max(http_only),
            "match_rate": match, "failed_http": sum(r.status != "finished" for r in remote.values()),
            "ttft_ms_local": [round(x, 2) for x in lt], "ttft_ms_http": [round(x, 2) for x in rt]}


def phase_load(lm, port, prompts, n_clients, max_new) -> dict:
    engine = OpenAIEngine(lm, OpenAIOptions(base_url=f"http://127.0.0.1:{port}/v1", concurrency=n_clients))
    reqs, t0 = [], time.perf_counter()
    for i in range(n_clients):
        key, messages = prompts[i % len(prompts)]
        text, ids = render_prompt(lm.tokenizer, messages)
        reqs.append(Request(id=f"c{i}", prompt_ids=ids, prompt_text=text, max_new_tokens=max_new, arrival_time=t0,
                            eos_token_ids=lm.eos_token_ids))
    for r in reqs:
        engine.add_request(r)
    deadline = time.monotonic() + 540
    while engine.has_unfinished() and time.monotonic() < deadline:
        engine.step()
    wall = time.perf_counter() - t0
    errors = [r.error for r in reqs if r.status != "finished"]
    after = scrape(port)
    return {"clients": n_clients, "completed": sum(r.status == "finished" for r in reqs), "errors": len(errors),
            "first_errors": errors[:3], "wall_s": wall, "output_tokens": sum(r.num_output_tokens for r in reqs),
            "ttft_ms_p50": statistics.median(ttft_ms(r) for r in reqs if r.token_times),
            "running_after": after["testbed_requests_running"], "waiting_after": after["testbed_requests_waiting"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=12, help="golden prompts for the TTFT phase")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--load-prompts", type=int, default=8, help="shortest golden prompts cycled over the clients")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lm = load_model(ModelSpec(id=args.model), "cpu")
    items = load_dataset("golden")
    fits = [it for it in items if len(render_prompt(lm.tokenizer, build_messages(it))[1]) + args.max_new_tokens
            < (lm.max_context or 10 ** 9)]
    prompts = [(it.id, build_messages(it)) for it in fits]
    port = free_port()
    proc = start_server(args.model, port, args.max_new_tokens)
    try:
        one_at_a_time(HFEngine(lm, HFOptions()), prompts[:1], lm, 4)                    # warm the local path
        ttft = phase_ttft(lm, port, prompts[:args.limit], args.max_new_tokens)
        short = sorted(prompts, key=lambda p: len(render_prompt(lm.tokenizer, p[1])[1]))[:args.load_prompts]
        load = phase_load(lm, port, short, args.clients, args.max_new_tokens)
    finally:
        proc.terminate()
        proc.wait(30)
    goals = {"ttft_p50_diff_le_10ms": ttft["ttft_p50_diff_ms"] <= 10.0,
             "http_layer_p50_le_10ms": ttft["http_layer_ms_p50"] <= 10.0,
             "clients_zero_errors": load["errors"] == 0 and load["completed"] == args.clients,
             "metrics_idle_after": load["running_after"] == 0 and load["waiting_after"] == 0}
    print(f"bench_serve: {args.model}, greedy, hf batch 1, 1 torch thread, loopback, "
          f"{os.cpu_count()} CPUs (shared)")
    print(f"  TTFT p50: in-process {ttft['ttft_ms_p50_local']:.1f} ms, HTTP {ttft['ttft_ms_p50_http']:.1f} ms, "
          f"difference {ttft['ttft_p50_diff_ms']:+.1f} ms (paired p50 {ttft['ttft_paired_diff_ms_p50']:+.1f} ms) "
          f"over {ttft['n']} prompts; outputs match {ttft['match_rate']:.0%}")
    print(f"  HTTP layer alone (client TTFT - the server's own TTFT, same request): p50 "
          f"{ttft['http_layer_ms_p50']:.1f} ms, max {ttft['http_layer_ms_max']:.1f} ms")
    print(f"  {load['clients']} streaming clients: {load['completed']} completed, {load['errors']} errors, "
          f"{load['wall_s']:.1f} s, {load['output_tokens']} tokens; after: running {load['running_after']:.0f}, "
          f"waiting {load['waiting_after']:.0f}")
    print(f"  goals: {goals}")
    print(json.dumps({"model": args.model, "max_new_tokens": args.max_new_tokens, "ttft": ttft, "load": load,
                      "goals": goals}))


if __name__ == "__main__":
    main()
