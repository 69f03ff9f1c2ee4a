"""What `testbed serve` adds to TTFT, whether it holds 64 streaming clients, and whether a client that
goes away gives its KV blocks back — one run, one card, one JSON line.

Regime: SmolLM2-135M (or --model), greedy, CPU, one torch thread in each process, loopback.
The arm is the same in both paths: configs/remote.yaml's `local` arm replaced by --engine
(paged by default), built in process with ArmPlan and served by `python -m testbed serve`
in a subprocess with the same overrides, exactly as a user would start it.

Phase 1, TTFT overhead. One request at a time (nothing queues), short question-only golden
prompts, each made unique per pair (so the prefix cache cannot favour either path), run in
process (A) and over HTTP through the `openai` engine (B), alternating the order ABAB / BABA
so drift and warm caches hit both alike. TTFT is the client's arrival -> first token in both
paths. The figure is the median of the paired differences B - A with a 95% bootstrap CI
(scipy, percentile); the goal "HTTP adds <= 10 ms at p50" is met when the CI's upper end is
<= 10 ms, missed when its lower end is > 10 ms, unresolved otherwise. Also: p50 of each path,
and the HTTP layer alone per request (client TTFT - the server's own TTFT for that request,
read from /metrics), which does not depend on how long the model took.
Phase 2, load: 64 concurrent streaming clients (the `openai` engine, 64 connections). Goal:
zero errors; /metrics then shows nothing running or waiting and no KV blocks in use.
Phase 3, disconnect: a streaming client asks for --disconnect-tokens tokens, reads its first
event and closes the socket. Goal: /metrics counts it aborted and its KV blocks return to the
level before it, long before it could have finished.

    python scripts/bench_serve.py                           # ~2-4 minutes on 2 CPU cores
    python scripts/bench_serve.py --engine hf --pairs 40    # the hf batch-1 arm instead

Prints a card, then one line of JSON (the last line of stdout).
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from testbed.arm import ArmPlan
from testbed.config import load_config
from testbed.drive import drive
from testbed.engines.openai import OpenAIEngine, OpenAIOptions
from testbed.models import load_model
from testbed.plugins import load_plugins
from testbed.request import Request
from testbed.serve.metrics import scrape
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages, render_prompt
from parity_servers import free_port  # noqa: E402  (scripts/ is on sys.path when a script runs)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "remote.yaml"
ARMS = {"paged": "{engine: paged, block_size: 16, kv_budget_tokens: 16384, max_num_seqs: 64}",
        "hf": "{engine: hf, batch_size: 1}"}
ABORTED = 'testbed_requests_total{outcome="aborted"}'
BLOCKS = "testbed_engine_kv_blocks_in_use"
COUNTING = "1, 2, 3, 4, 5,"       # greedy SmolLM2 keeps counting: the stream is still going when the client leaves


def overrides(args) -> list[str]:
    return [f"model.id={args.model}", "threads=1", f"workload.max_new_tokens={args.max_new_tokens}",
            f"arms.local={ARMS[args.engine]}"]


def start_server(sets: list[str], port: int, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "testbed", "serve", str(CONFIG), "--arm", "local", "--port", str(port),
           "--device", "cpu"] + [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 300 s")


def metrics_at(port: int) -> dict[str, float]:
    return scrape(f"http://127.0.0.1:{port}/metrics")


def short_prompts(lm, n: int) -> list[list[dict]]:
    """The n shortest distinct golden questions as question-only chat prompts (~50 tokens with SmolLM2's template)."""
    msgs = {m[1]["content"]: m for m in (build_messages(it, chunks=[]) for it in load_dataset("golden"))}
    return sorted(msgs.values(), key=lambda m: len(render_prompt(lm.tokenizer, m)[1]))[:n]


def unique(messages: list[dict], i: int) -> list[dict]:
    """The same prompt with a per-pair tag up front, so no two pairs share more than the system turn."""
    system, user = messages
    return [system, {**user, "content": f"Request {i}. {user['content']}"}]


def run_alone(engine, rid: str, messages, lm, max_new: int) -> Request:
    """One request at concurrency 1; it is rendered and tokenised at its arrival, as the runner does."""
    done: list[Request] = []

    def make(_, arrival):
        text, ids = render_prompt(lm.tokenizer, messages)
        return Request(id=rid, prompt_ids=ids, prompt_text=text, max_new_tokens=max_new, arrival_time=arrival,
                       eos_token_ids=lm.eos_token_ids)
    drive(engine, [rid], make, None, 1, done.append)
    return done[0]


def ttft_ms(r: Request) -> float:
    return (r.token_times[0] - r.arrival_time) * 1e3 if r.token_times else float("nan")


def median_ci(x: list[float]) -> dict:
    """Median and its 95% percentile-bootstrap interval (seeded)."""
    a = np.asarray(x, float)
    res = stats.bootstrap((a,), np.median, n_resamples=5000, method="percentile", rng=np.random.default_rng(0))
    ci = res.confidence_interval
    return {"median": float(np.median(a)), "ci_low": float(ci.low), "ci_high": float(ci.high), "n": len(a)}


def phase_ttft(lm, local, remote, port, prompts, pairs: int, warmup: int, max_new: int) -> dict:
    key = "testbed_time_to_first_token_seconds_sum"
    a, b, layer, match = [], [], [], []
    for i in range(warmup + pairs):
        messages = unique(prompts[i % len(prompts)], i)
        got = {}
        for path in (("A", "B") if i % 2 == 0 else ("B", "A")):
            if path == "A":
                got["A"] = run_alone(local, f"a{i}", messages, lm, max_new)
                continue
            before = metrics_at(port)[key]
            got["B"] = run_alone(remote, f"b{i}", messages, lm, max_new)
            server_ms = (metrics_at(port)[key] - before) * 1e3    # the server's own arrival -> first token
        if i < warmup:
            continue
        if got["B"].status != "finished" or not got["A"].token_times or not got["B"].token_times:
            raise RuntimeError(f"pair {i} failed: {got['B'].error or got['A'].error}")
        a.append(ttft_ms(got["A"]))
        b.append(ttft_ms(got["B"]))
        layer.append(b[-1] - server_ms)
        match.append(got["A"].output_ids == got["B"].output_ids)
    diff = [y - x for x, y in zip(a, b)]
    return {"pairs": len(diff), "paired_diff_ms": median_ci(diff), "http_layer_ms": median_ci(layer),
            "ttft_ms_p50_in_process": float(np.median(a)), "ttft_ms_p50_http": float(np.median(b)),
            "match_rate": sum(match) / len(match),
            "raw_ms": {"in_process": [round(v, 2) for v in a], "http": [round(v, 2) for v in b],
                       "http_layer": [round(v, 2) for v in layer]}}


def phase_load(lm, port, prompts, n_clients: int, max_new: int) -> dict:
    engine = OpenAIEngine(lm, OpenAIOptions(base_url=f"http://127.0.0.1:{port}/v1", concurrency=n_clients))
    t0, reqs = time.perf_counter(), []
    for i in range(n_clients):
        text, ids = render_prompt(lm.tokenizer, unique(prompts[i % len(prompts)], 10_000 + i))
        reqs.append(Request(id=f"c{i}", prompt_ids=ids, prompt_text=text, max_new_tokens=max_new, arrival_time=t0,
                            eos_token_ids=lm.eos_token_ids))
        engine.add_request(reqs[-1])
    deadline = time.monotonic() + 300
    while engine.has_unfinished() and time.monotonic() < deadline:
        engine.step()
    wall = time.perf_counter() - t0
    engine.close()
    errors = [r.error or r.status for r in reqs if r.status != "finished"]
    m = metrics_at(port)
    return {"clients": n_clients, "completed": n_clients - len(errors), "errors": len(errors),
            "first_errors": errors[:3], "wall_s": wall, "output_tokens": sum(r.num_output_tokens for r in reqs),
            "ttft_ms_p50": float(np.median([ttft_ms(r) for r in reqs])),
            "running_after": m["testbed_requests_running"], "waiting_after": m["testbed_requests_waiting"],
            "kv_blocks_after": m.get(BLOCKS)}


def phase_disconnect(port: int, model: str, max_tokens: int) -> dict:
    """Stream, read one event, hang up; then watch /metrics until the request is aborted and its blocks are back."""
    before = metrics_at(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = {"model": model, "prompt": COUNTING, "max_tokens": max_tokens,
            "temperature": 0, "stream": True}
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    first = resp.readline()
    during = metrics_at(port)
    t = time.perf_counter()
    conn.sock.close()
    conn.close()
    freed, m = False, during
    while time.perf_counter() - t < 60 and not freed:
        time.sleep(0.02)
        m = metrics_at(port)
        freed = m.get(ABORTED, 0) > before.get(ABORTED, 0) and m["testbed_requests_running"] == 0 \
            and m.get(BLOCKS, 0) <= before.get(BLOCKS, 0)
    return {"status": resp.status, "first_event": first.startswith(b"data: "), "max_tokens": max_tokens,
            "aborted": m.get(ABORTED, 0) - before.get(ABORTED, 0), "freed": freed,
            "freed_after_ms": (time.perf_counter() - t) * 1e3 if freed else None,
            "kv_blocks_before": before.get(BLOCKS), "kv_blocks_during": during.get(BLOCKS),
            "kv_blocks_after": m.get(BLOCKS), "tokens_generated":
                m["testbed_generation_tokens_total"] - before["testbed_generation_tokens_total"]}


def verdict(ci: dict, limit: float) -> str:
    return "met" if ci["ci_high"] <= limit else "missed" if ci["ci_low"] > limit else "unresolved"


def card(args, t: dict, load: dict, disc: dict, goals: dict) -> None:
    d, h = t["paired_diff_ms"], t["http_layer_ms"]
    print(f"bench_serve: {args.model}, arm {ARMS[args.engine]}, greedy, 1 torch thread per process, loopback, "
          f"{os.cpu_count()} CPUs")
    print(f"  TTFT, {t['pairs']} ABAB pairs, one request at a time: p50 in-process "
          f"{t['ttft_ms_p50_in_process']:.1f} ms, HTTP {t['ttft_ms_p50_http']:.1f} ms; "
          f"outputs match {t['match_rate']:.0%}")
    print(f"  HTTP - in-process, median of paired differences: {d['median']:+.2f} ms "
          f"(95% CI {d['ci_low']:+.2f} .. {d['ci_high']:+.2f})  -> goal <= 10 ms: {goals['ttft_overhead']}")
    print(f"  HTTP layer alone (client TTFT - server's own TTFT): median {h['median']:.2f} ms "
          f"(95% CI {h['ci_low']:.2f} .. {h['ci_high']:.2f})")
    print(f"  {load['clients']} streaming clients: {load['completed']} completed, {load['errors']} errors, "
          f"{load['wall_s']:.1f} s, {load['output_tokens']} tokens, TTFT p50 {load['ttft_ms_p50']:.0f} ms; after: "
          f"running {load['running_after']:.0f}, waiting {load['waiting_after']:.0f}, "
          f"KV blocks {load['kv_blocks_after']}")
    print(f"  disconnect after the first event (max_tokens {disc['max_tokens']}): aborted {disc['aborted']:.0f}, "
          f"KV blocks {disc['kv_blocks_before']} -> {disc['kv_blocks_during']} -> {disc['kv_blocks_after']}, "
          f"freed in {disc['freed_after_ms'] or float('nan'):.0f} ms, {disc['tokens_generated']:.0f} tokens generated")
    print(f"  goals: {goals}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--engine", choices=sorted(ARMS), default="paged", help="the arm, in process and served")
    ap.add_argument("--pairs", type=int, default=60, help="paired TTFT trials (after --warmup)")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=8, help="shortest golden questions, cycled")
    ap.add_argument("--max-new-tokens", type=int, default=4, help="per TTFT trial (only the first token counts)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--load-tokens", type=int, default=16, help="max_new_tokens per load client")
    ap.add_argument("--disconnect-tokens", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sets = overrides(args)
    load_plugins()      # engines and sections registered before the config is validated
    cfg = load_config(CONFIG, sets, "cpu")
    lm = load_model(cfg.arm_model("local"), "cpu")
    prompts = short_prompts(lm, args.prompts)
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = start_server(sets, port, log)
        try:
            local = ArmPlan("local", cfg, lm).new_engine()
            remote = OpenAIEngine(lm, OpenAIOptions(base_url=f"http://127.0.0.1:{port}/v1", concurrency=1,
                                                    extra_body={"return_token_ids": True}))
            ttft = phase_ttft(lm, local, remote, port, prompts, args.pairs, args.warmup, args.max_new_tokens)
            remote.close()
            load = phase_load(lm, port, prompts, args.clients, args.load_tokens)
            disc = phase_disconnect(port, lm.spec_id, args.disconnect_tokens)
        finally:
            proc.terminate()
            proc.wait(30)
    goals = {"ttft_overhead": verdict(ttft["paired_diff_ms"], 10.0),
             "http_layer_p50_le_10ms": ttft["http_layer_ms"]["ci_high"] <= 10.0,
             "outputs_match": ttft["match_rate"] == 1.0,
             "clients_zero_errors": load["errors"] == 0 and load["completed"] == args.clients,
             "idle_after_load": load["running_after"] == 0 and load["waiting_after"] == 0
             and load["kv_blocks_after"] in (0, None),
             "disconnect_frees": disc["freed"] and disc["aborted"] == 1 and disc["first_event"]
             and disc["tokens_generated"] < args.disconnect_tokens}
    card(args, ttft, load, disc, goals)
    print(json.dumps({"model": args.model, "engine": args.engine, "arm": ARMS[args.engine], "ttft": ttft,
                      "load": load, "disconnect": disc, "goals": goals}))


if __name__ == "__main__":
    main()
