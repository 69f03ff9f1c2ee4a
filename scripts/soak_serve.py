"""Soak `testbed serve` (paged engine, loopback only) with valid and hostile clients at once, bounded in time.

Regime: one server process (`python -m testbed serve` of configs/remote.yaml's `local` arm made a
paged arm, as scripts/bench_serve.py starts it: one torch thread, 127.0.0.1), SmolLM2-135M by default, greedy. Valid clients: --valid closed-loop workers streaming chat completions of golden
prompts, question only (max_tokens 16); their TTFT is request sent -> first token event. Phases:

  clean    valid clients alone for --clean-s: the reference p99 TTFT;
  soak     valid clients plus one worker of each hostile class for --duration (>= 600 s for the issue):
           malformed (bad JSON, wrong types, unknown fields, bad token ids), oversized (a declared 50 MB
           body, a streamed 9 MB body, a 1 MB prompt), slow-loris (headers trickled a byte per 2 s),
           idle (connections that send nothing), disconnecting (streams closed after the first token),
           extreme sampling (temperature 1e-300, seed 2^63-1 and 2^70, top_p 1e-9, huge top_k);
  after    hostile clients stop, the server settles (--settle-s), then valid clients alone again.

Reports requests served, outcomes by client class, valid clients' p50/p99 TTFT per phase, valid
requests failed, server RSS and KV blocks in use at the start and the end, and the server's stderr
size. Goals: soak p99 TTFT <= 1.5x both clean runs (before and after), 0 valid requests failed, RSS at
the end within 10% of the start of the soak, 0 KV blocks in use at the end.

    python scripts/soak_serve.py --duration 600          # ~13 minutes
    python scripts/soak_serve.py --duration 60 --clean-s 20 --model random:small-llama   # a quick look

Prints a card, then one line of JSON (the last line of stdout).
"""
import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import psutil

from testbed.serve.metrics import scrape
from testbed.workloads.datasets import load_dataset
from testbed.workloads.prompts import build_messages

sys.path.insert(0, str(Path(__file__).parent))
from bench_serve import ARMS, BLOCKS, free_port, start_server  # noqa: E402  (configs/remote.yaml's `local` arm, served)

HOST = "127.0.0.1"                    # loopback only, always


class Http:
    """Minimal HTTP/1.0 over asyncio streams: HTTP/1.0 bodies end at close, so SSE needs no chunk parsing."""

    def __init__(self, port: int):
        self.port = port

    async def post(self, path: str, body: bytes, stream: bool = False, first_only: bool = False):
        """(status, first-token delay s or None, events) for one request; raises on connection errors."""
        reader, writer = await asyncio.open_connection(HOST, self.port)
        try:
            t0 = time.perf_counter()
            writer.write(f"POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            if not stream:
                return status, None, [await reader.read()]
            first, events = None, []
            while line := await reader.readline():
                if line.startswith(b"data: {"):
                    events.append(line)
                    if first is None and b'"token_ids":[' in line and b'"token_ids":[]' not in line:
                        first = time.perf_counter() - t0
                        if first_only:
                            return status, first, events
            return status, first, events
        finally:
            writer.close()


def chat(messages, max_tokens=16, stream=True, **extra) -> bytes:
    return json.dumps({"model": "local", "messages": messages, "max_tokens": max_tokens, "stream": stream,
                       "return_token_ids": True, **extra}).encode()


async def valid_worker(http: Http, prompts, stop: asyncio.Event, out: dict) -> None:
    i = 0
    while not stop.is_set():
        msgs = prompts[i % len(prompts)]
        i += 1
        try:
            status, first, events = await asyncio.wait_for(http.post("/v1/chat/completions", chat(msgs), True), 120)
            ok = status == 200 and first is not None and not any(b'"error"' in e for e in events)
            out["outcomes"][f"{status}" if ok or status != 200 else "200-with-error"] += 1
            if ok:
                out["ttft"].append(first)
        except (OSError, asyncio.TimeoutError, IndexError, ValueError) as e:
            out["outcomes"][type(e).__name__] += 1


MALFORMED = [b"{not json", b"[]", b'{"model": 3, "messages": []}', b'{"model": "local", "prompt": [999999999]}',
             b'{"model": "local", "prompt": "x", "max_tokens": -1}', b'{"model": "local", "prompt": "x", "n": 2}',
             b'{"model": "local", "prompt": "x", "bogus": 1}', b'{"model": "local", "messages": [{"role": "x"}]}',
             "\udcff".encode("utf-8", "surrogatepass")]
EXTREME = [{"temperature": 1e-300}, {"temperature": 1e-6, "seed": 2 ** 63 - 1}, {"seed": 2 ** 70},
           {"temperature": 2.0, "top_p": 1e-9}, {"temperature": 1.0, "top_k": 10 ** 9}, {"seed": -1}]


async def hostile(name: str, http: Http, prompts, stop: asyncio.Event, out: Counter) -> None:
    """One worker of one hostile class until `stop`; outcomes counted by HTTP status or exception."""
    i = 0
    while not stop.is_set():
        i += 1
        try:
            status = await asyncio.wait_for(ATTACKS[name](http, prompts, i), 60)
            out[str(status)] += 1
        except (OSError, asyncio.TimeoutError, IndexError, ValueError) as e:
            out[type(e).__name__] += 1
        await asyncio.sleep(PAUSE[name])


async def malformed(http, prompts, i):
    return (await http.post("/v1/completions" if i % 2 else "/v1/chat/completions", MALFORMED[i % len(MALFORMED)]))[0]


async def extreme(http, prompts, i):
    return (await http.post("/v1/chat/completions", chat(prompts[i % len(prompts)], 8, False, **EXTREME[i % 6])))[0]


async def disconnecting(http, prompts, i):
    return (await http.post("/v1/chat/completions", chat(prompts[i % len(prompts)], 200), True, first_only=True))[0]


async def oversized(http, prompts, i):
    if i % 3 == 0:                                 # a 1 MB prompt: under the body cap, over the prompt cap
        return (await http.post("/v1/completions", json.dumps({"model": "local", "prompt": "word " * 200_000})
                                .encode()))[0]
    reader, writer = await asyncio.open_connection(HOST, http.port)
    try:
        if i % 3 == 1:                             # declares 50 MB, sends 64 KB
            writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 65536)
        else:                                      # streams 9 MB chunked, past the 8 MB cap
            writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(36):
                    writer.write(b"40000\r\n" + b"y" * 0x40000 + b"\r\n")
                    await writer.drain()
            except ConnectionError:
                pass                               # the server answered 413 and closed before the end
        await writer.drain()
        return int((await reader.readline()).split()[1])
    finally:
        writer.close()


async def slow_loris(http, prompts, i):
    """Trickle a header byte every 2 s until the server closes; the status is how long it took (s, bucketed)."""
    reader, writer = await asyncio.open_connection(HOST, http.port)
    t0 = time.monotonic()
    try:
        writer.write(b"POST /v1/completions HTTP/1.1\r\n")
        while time.monotonic() - t0 < 60:
            writer.write(b"X")
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 2.0) == b"":
                    break
            except asyncio.TimeoutError:
                continue
        return f"closed<={int(time.monotonic() - t0) + 1}s"
    finally:
        writer.close()


async def idle(http, prompts, i):
    """20 connections that send nothing; the status is the slowest close, in whole seconds."""
    conns = [await asyncio.open_connection(HOST, http.port) for _ in range(20)]
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(r.read(1) for r, _ in conns)), 60)
        return f"closed<={int(time.monotonic() - t0) + 1}s"
    finally:
        for _, w in conns:
            w.close()


ATTACKS = {"malformed": malformed, "extreme_sampling": extreme, "disconnecting": disconnecting,
           "oversized": oversized, "slow_loris": slow_loris, "idle": idle}
PAUSE = {"malformed": 0.2, "extreme_sampling": 0.5, "disconnecting": 0.5, "oversized": 1.0, "slow_loris": 0.0,
         "idle": 0.0}


async def phase(http: Http, prompts, seconds: float, n_valid: int, attacks: list[str]) -> dict:
    stop = asyncio.Event()
    valid = {"outcomes": Counter(), "ttft": []}
    bad: dict[str, Counter] = defaultdict(Counter)
    tasks = [asyncio.create_task(valid_worker(http, prompts, stop, valid)) for _ in range(n_valid)]
    tasks += [asyncio.create_task(hostile(a, http, prompts, stop, bad[a])) for a in attacks]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    ttft = np.asarray(valid["ttft"]) * 1e3
    return {"valid_requests": int(sum(valid["outcomes"].values())), "valid_outcomes": dict(valid["outcomes"]),
            "ttft_ms_p50": float(np.percentile(ttft, 50)) if len(ttft) else None,
            "ttft_ms_p99": float(np.percentile(ttft, 99)) if len(ttft) else None,
            "ttft_ms": [round(float(t), 1) for t in ttft],           # the raw values behind the percentiles
            "hostile": {a: dict(c) for a, c in bad.items()}}


def server_state(proc, port) -> dict:
    m = scrape(f"http://{HOST}:{port}/metrics")
    return {"rss_mb": psutil.Process(proc.pid).memory_info().rss / 2 ** 20, "kv_blocks_in_use": m.get(BLOCKS),
            "running": m.get("testbed_requests_running"), "waiting": m.get("testbed_requests_waiting")}


async def soak(args, port: int, proc) -> dict:
    http = Http(port)
    # question-only golden prompts (~50 tokens): many requests per phase, so p99 rests on hundreds of samples
    prompts = [build_messages(it, chunks=[]) for it in load_dataset("golden", limit=24)]
    for msgs in prompts:                  # warm-up, not reported: every prompt once, then the valid load for 10 s
        await http.post("/v1/chat/completions", chat(msgs), True)
    await phase(http, prompts, 10, args.valid, [])
    out = {"start": server_state(proc, port)}
    out["clean"] = await phase(http, prompts, args.clean_s, args.valid, [])
    out["before_soak"] = server_state(proc, port)
    out["soak"] = await phase(http, prompts, args.duration, args.valid, list(ATTACKS))
    await asyncio.sleep(args.settle_s)
    out["after_settle"] = server_state(proc, port)
    out["after"] = await phase(http, prompts, args.clean_s, args.valid, [])
    await asyncio.sleep(2)
    out["end"] = server_state(proc, port)
    return out


def verdict(r: dict) -> dict:
    """The machine can drift between the clean runs that bracket the soak (a measured run: clean p50 239 ms
    before, 174 ms after), so the TTFT goal counts as met only against both of them."""
    before = r["soak"]["ttft_ms_p99"] / r["clean"]["ttft_ms_p99"]
    after = r["soak"]["ttft_ms_p99"] / r["after"]["ttft_ms_p99"]
    failed = sum(n for k, n in r["soak"]["valid_outcomes"].items() if k != "200")
    rss = r["end"]["rss_mb"] / r["before_soak"]["rss_mb"]
    return {"p99_ttft_soak_vs_clean": before, "p99_ttft_soak_vs_clean_after": after, "valid_failed": failed,
            "rss_end_vs_before_soak": rss, "kv_blocks_in_use_end": r["end"]["kv_blocks_in_use"],
            "goals_met": {"p99_ttft<=1.5x": max(before, after) <= 1.5, "0_valid_failed": failed == 0,
                          "rss_within_10pct": abs(rss - 1) <= 0.10, "kv_blocks_0": r["end"]["kv_blocks_in_use"] == 0}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=600, help="seconds of the soak phase (default 600)")
    p.add_argument("--clean-s", type=float, default=60, help="seconds of each clean phase (default 60)")
    p.add_argument("--settle-s", type=float, default=20, help="seconds after the soak before measuring")
    p.add_argument("--valid", type=int, default=4, help="concurrent valid clients (default 4)")
    p.add_argument("--model", default="smollm2-135m")
    args = p.parse_args()
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+b", suffix=".log", delete=False)
    t0, c0 = time.monotonic(), psutil.cpu_times()
    sets = [f"model.id={args.model}", "threads=1", "workload.max_new_tokens=16", f"arms.local={ARMS['paged']}"]
    proc = start_server(sets, port, log)            # python -m testbed serve, 127.0.0.1, one torch thread
    try:
        r = asyncio.run(soak(args, port, proc))
        r["server_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    c1 = psutil.cpu_times()
    r.update({"model": args.model, "duration_s": args.duration, "clean_s": args.clean_s, "valid_clients": args.valid,
              "wall_s": time.monotonic() - t0, "machine_cpu_s": (c1.user + c1.system) - (c0.user + c0.system),
              "server_stderr_bytes": Path(log.name).stat().st_size,
              "server_stderr_tail": Path(log.name).read_text(errors="replace")[-400:], **verdict(r)})
    print(card(r))
    print(json.dumps(r, default=float))


def card(r: dict) -> str:
    lines = [f"soak_serve: {r['model']}, {r['valid_clients']} valid clients, soak {r['duration_s']:.0f} s, "
             f"clean {r['clean_s']:.0f} s, wall {r['wall_s']:.0f} s, machine CPU {r['machine_cpu_s']:.0f} s"]
    for ph in ("clean", "soak", "after"):
        x = r[ph]
        lines.append(f"  {ph:6s} valid {x['valid_requests']:5d} {x['valid_outcomes']}  TTFT p50 "
                     f"{x['ttft_ms_p50']:.0f} ms  p99 {x['ttft_ms_p99']:.0f} ms")
    for name, outcomes in r["soak"]["hostile"].items():
        lines.append(f"  hostile {name:16s} {outcomes}")
    lines.append(f"  p99 TTFT soak/clean {r['p99_ttft_soak_vs_clean']:.2f}x before, "
                 f"{r['p99_ttft_soak_vs_clean_after']:.2f}x after; valid failed {r['valid_failed']}; "
                 f"RSS {r['before_soak']['rss_mb']:.0f} -> {r['end']['rss_mb']:.0f} MB "
                 f"({r['rss_end_vs_before_soak']:.3f}x); KV blocks in use at end {r['kv_blocks_in_use_end']}; "
                 f"server stderr {r['server_stderr_bytes']} bytes; goals {r['goals_met']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
