"""How much the `openai` engine's HTTP client adds to each request, at 1 to 256+ concurrent streams.

    python scripts/bench_client.py --streams 1 64 256 --tokens 16 --gap-ms 20
    python scripts/bench_client.py --streams 256 --tokens 32 --gap-ms 50 --spread 3   # 256 in flight, steady

Regime: a stub OpenAI server in a second process on loopback streams `--tokens` chunks per
request, `--gap-ms` apart, timing (CLOCK_MONOTONIC, shared by both processes) when each request
arrived and when it wrote its first and last chunk. The engine runs N requests all at once with
concurrency N through the runner's drive loop: a burst, so the last of N waits behind N - 1
sends. With `--spread K`, K*N requests arrive evenly at N per stream duration instead, so about
N streams stay open in a steady state (the peak the server saw is reported): the per-request cost
at that concurrency, without the burst's serialisation.

Added per-request overhead (the figure the < 1 ms goal is about) =
(client: scheduled arrival -> last chunk read) - (stub: request in its socket -> last chunk written),
i.e. everything between the two clocks that is not the server's. The stub's span starts when the
kernel received the request's last byte (SO_TIMESTAMPNS on its socket), not when the stub's event
loop got to it: that wait is the server's, and reported apart as `stub_notice` (on a real server
it is the server's too). A write's time is taken just before its send, so the send counts against
the client. Added splits exactly into three parts, each reported:
  queue     send - arrival: the client's timer waking for a scheduled send (and its concurrency
            queue, which no spread level fills);
  request   kernel at the stub has the request - send: the client building and writing the request,
            and the loopback;
  delivery  client read of the last chunk - stub's write of it: the loopback and the client's event
            loop getting to the read.
The same is reported for the first chunk (what the client adds to TTFT). vLLM's `bench serve`
reports no client overhead (its TTFT starts at its own send); guidellm keeps the scheduler's lag
apart (our `queue`); AIPerf checks itself against a mock server's configured latencies, which puts
the mock's own lag on the client. Here the stub's lag is taken out by its own timestamps, and
everything between the two sockets is put on the client.
`connects`: connections the stub accepted during the timed requests. The engine starts with an
empty pool, so the first N requests each connect; `--warm-connections` sets the engine's
`warm_connections: N`, which opens N before the clock (as `vllm bench serve --num-warmups`).
With `--pin` the stub runs on the last CPU and the client on the others, so the stub's CPU is not
taken from the client (on this 2-CPU box the client then has one core for its event loop and the
drive thread); without it they share all cores. Also reported: CPU-milliseconds per request of
the client process (and of its event-loop thread alone; the rest is the drive loop) and of the stub.
The timed section runs inside testbed.drive.frozen_gc(), as the runner's timed arms do.
The stub is asyncio on raw non-blocking sockets (recvmsg for the kernel timestamp), writing
pre-encoded chunked frames, so that its own cost stays small.
Ends with one JSON line.
"""
import argparse
import json
import multiprocessing as mp
import os
import resource
import socket
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stub_openai import stub_server  # noqa: E402  (beside this script)


def pin(stub_pid: int) -> None:
    """The stub alone on the last CPU; this process (and the threads it starts later) on the rest."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("--pin needs at least 2 CPUs")
    os.sched_setaffinity(stub_pid, cpus[-1:])
    os.sched_setaffinity(0, cpus[:-1])


def peak_open(spans: list) -> int:
    """Most streams open at once at the server: (received, last chunk written) intervals."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    return int(np.max(np.cumsum([d for _, d in edges]))) if edges else 0


def thread_cpu_s(tid: int) -> float:
    """User + system CPU-seconds of one thread of this process, by its native id."""
    return next((t.user_time + t.system_time for t in psutil.Process().threads() if t.id == tid), 0.0)


def added_parts(ok: list, server: dict) -> dict[str, list[float]]:
    """Per request, seconds: the three parts of added E2EL (and of added TTFT, with first_delivery)."""
    srv = [server[r.prompt_text] for r in ok]            # [kernel received, stub saw, first written, last written]
    return {"queue": [r.send_time - r.arrival_time for r in ok],
            "request": [s[0] - r.send_time for r, s in zip(ok, srv)],
            "delivery": [r.chunk_times[-1] - s[3] for r, s in zip(ok, srv)],
            "first_delivery": [r.chunk_times[0] - s[2] for r, s in zip(ok, srv)],
            "stub_notice": [s[1] - s[0] for s in srv]}


def run_level(lm, url: str, stub_pid: int, n: int, tokens: int, spread: int = 0, stream_s: float = 0.0,
              warm_conns: bool = False) -> dict:
    from testbed.drive import drive, frozen_gc
    from testbed.engines.openai import OpenAIEngine, OpenAIOptions
    from testbed.request import Request
    # spread: no slot limit that binds, so a stream the stub serves late does not hold back the next arrival
    # warm: n connections opened before the clock (the option is passed only then: older trees lack it)
    engine = OpenAIEngine(lm, OpenAIOptions(base_url=url, concurrency=4096 if spread else n,
                                            served_model_name="stub", max_retries=0,
                                            **({"warm_connections": n} if warm_conns else {})))
    done: list = []
    tag = f"n{n}-{time.perf_counter_ns()}"
    make = lambda i, arrival: Request(id=f"{tag}-{i}", prompt_ids=[1], prompt_text=f"{tag}-{i}",  # noqa: E731
                                      max_new_tokens=tokens, arrival_time=arrival)
    count = n * spread if spread else n
    offsets = [i * stream_s / n for i in range(count)] if spread else [0.0] * n
    stub, tid = psutil.Process(stub_pid), engine.thread.native_id
    with frozen_gc():                          # as the runner times an arm: no full-heap GC pause inside
        c0, loop0, stub0 = time.process_time(), thread_cpu_s(tid), sum(stub.cpu_times()[:2])
        drive(engine, list(range(count)), make, offsets, None, done.append)
        cpu, loop_cpu = time.process_time() - c0, thread_cpu_s(tid) - loop0
        stub_cpu = sum(stub.cpu_times()[:2]) - stub0
    engine.close()
    with urllib.request.urlopen(url.removesuffix("/v1") + "/times", timeout=30) as resp:
        log = json.load(resp)
    server = log["times"]
    ok = [r for r in done if r.status == "finished"]
    t_end = max((r.chunk_times[-1] for r in ok), default=0.0)
    parts = added_parts(ok, server)
    e2e = [q + a + b for q, a, b in zip(parts["queue"], parts["request"], parts["delivery"])]
    # after the first stream duration the pool holds ~n kept-alive connections: no connect per request
    t_first = min((r.arrival_time for r in ok), default=0.0)
    warm = [x for x, r in zip(e2e, ok) if spread and r.arrival_time - t_first >= stream_s]
    first = [q + a + b for q, a, b in zip(parts["queue"], parts["request"], parts["first_delivery"])]
    ms = lambda xs, q: float(np.percentile(np.asarray(xs) * 1e3, q))  # noqa: E731
    spans = [(server[r.prompt_text][0], server[r.prompt_text][3]) for r in ok]
    return {"streams": n, "requests": count, "peak_open_streams": peak_open(spans), "ok": len(ok),
            "warm_connections": n if warm_conns else 0,
            "new_connections_timed": sum(t_first <= t <= t_end for t in log["accepts"]),
            "failed": len(done) - len(ok),
            "added_e2el_ms_mean": float(np.mean(e2e) * 1e3), "added_e2el_ms_p50": ms(e2e, 50),
            "added_e2el_ms_p99": ms(e2e, 99), "added_ttft_ms_p50": ms(first, 50), "added_ttft_ms_p99": ms(first, 99),
            **{f"{k}_ms_p{q}": ms(v, q) for k, v in parts.items() for q in (50, 99)},
            "client_queue_ms_p99": ms(parts["queue"], 99), "queue_ms_max": ms(parts["queue"], 100),
            "late_sends_10ms": sum(q > 0.01 for q in parts["queue"]),
            "early_sends": sum(q < 0 for q in parts["queue"]), "queue_ms_min": ms(parts["queue"], 0),
            **({"warm_pool_requests": len(warm), "warm_added_e2el_ms_p50": ms(warm, 50),
                "warm_added_e2el_ms_p99": ms(warm, 99)} if warm else {}),
            "client_loop": type(engine.loop).__module__, "client_cpu_s": cpu,
            "client_cpu_ms_per_request": cpu / count * 1e3, "event_loop_cpu_ms_per_request": loop_cpu / count * 1e3,
            "stub_cpu_ms_per_request": stub_cpu / count * 1e3}


def print_card(rows: list[dict]) -> None:
    print(f"{'streams':>7} {'peak':>5} {'ok':>5} {'fail':>4} {'added E2EL p50/p99':>19} {'TTFT p50/p99':>14}  "
          f"{'p50 ms: queue':>13} {'request':>8} {'delivery':>8} {'(stub notice)':>13}  "
          f"{'CPU ms/req: client':>18} {'(loop)':>6} {'stub':>6} {'warm-pool p50/p99':>17} {'connects':>8}  loop")
    for r in rows:
        print(f"{r['streams']:>7} {r['peak_open_streams']:>5} {r['ok']:>5} {r['failed']:>4} "
              f"{r['added_e2el_ms_p50']:>9.3f}/{r['added_e2el_ms_p99']:<9.3f} "
              f"{r['added_ttft_ms_p50']:>6.3f}/{r['added_ttft_ms_p99']:<7.3f}  "
              f"{r['queue_ms_p50']:>13.3f} {r['request_ms_p50']:>8.3f} {r['delivery_ms_p50']:>8.3f} "
              f"{r['stub_notice_ms_p50']:>13.3f}  "
              f"{r['client_cpu_ms_per_request']:>18.3f} {r['event_loop_cpu_ms_per_request']:>6.3f} "
              f"{r['stub_cpu_ms_per_request']:>6.3f} "
              f"{r.get('warm_added_e2el_ms_p50', float('nan')):>8.3f}/{r.get('warm_added_e2el_ms_p99', float('nan')):<8.3f} "
              f"{r['new_connections_timed']:>8} "
              f"{r['client_loop']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 64, 256])
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    ap.add_argument("--spread", type=int, default=0,
                    help="K: send K*N requests evenly, N per stream duration (steady N open), not N at once")
    ap.add_argument("--pin", action="store_true",
                    help="the stub on the last CPU, the client on the others: the server does not take the client's CPU")
    ap.add_argument("--warm-connections", action="store_true",
                    help="the engine opens N connections before the clock (warm_connections: N)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    proc = mp.get_context("fork").Process(target=stub_server, args=(sock, args.gap_ms / 1e3), daemon=True)
    proc.start()
    if args.pin:
        pin(proc.pid)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    from testbed.config import ModelSpec
    from testbed.models import load_model
    lm = load_model(ModelSpec(id="random:tiny-llama"), "cpu")     # the engine needs a tokenizer only
    rows = []
    try:
        run_level(lm, url, proc.pid, 4, 2)                          # warm: imports, first connections
        for n in args.streams:
            rows.append(run_level(lm, url, proc.pid, n, args.tokens, args.spread, args.tokens * args.gap_ms / 1e3,
                                  args.warm_connections))
    finally:
        proc.terminate()
    how = f"{args.spread} x N requests, N per stream duration" if args.spread else "N requests at once"
    print(f"stub server on loopback: {args.tokens} chunks per request, {args.gap_ms:g} ms apart; {how}; "
          f"{os.cpu_count()} CPUs" + ("; stub pinned to the last, client to the rest" if args.pin else "")
          + ("; pool warmed with N connections" if args.warm_connections else ""))
    print_card(rows)
    print(json.dumps({"bench": "client", "tokens": args.tokens, "gap_ms": args.gap_ms, "spread": args.spread,
                      "pin": args.pin, "warm_connections": args.warm_connections, "levels": rows}))


if __name__ == "__main__":
    main()
