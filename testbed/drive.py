"""Drive one engine through a workload: admit requests on their arrival schedule, step, collect.

The driver owns the clock. A request's arrival time is its scheduled send time (open loop),
or the moment a slot frees up (closed loop, fixed concurrency), so TTFT counts queueing.
"""
import gc
import time
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from testbed.engines.base import Engine
from testbed.request import Request

# Once an engine holds the whole schedule this loop has nothing to do but collect: step() may block
# this long (a finished request still returns at once; the bound only keeps Ctrl-C prompt).
HANDED_OVER_WAIT_S = 0.25


def drive(engine: Engine, items: list, make_request: Callable[[object, float], Request],
          offsets: list[float] | None, concurrency: int | None,
          on_finish: Callable[[Request], None], max_in_flight: int | None = None,
          duration_s: float | None = None) -> int:
    """Run every item through `engine`; call `on_finish` as each request ends. Returns how many were sent.

    Open loop (offsets), at most `max_in_flight` at once: a request held back keeps its scheduled
    arrival, so its wait counts in TTFT. After `duration_s` nothing new is sent; in-flight requests finish.
    An engine with `accepts_future_arrivals` gets a plain open-loop schedule up front and sends each
    request at its arrival_time itself, as vLLM's client does: no admission lag from this loop's
    polling, and no polling at all between events: such an engine's step(wait_s=) blocks until a
    request ends (polling every 2 ms woke the client 500 times a second beside the server it measured).
    """
    t0 = time.perf_counter()
    pending = deque(zip(offsets if offsets is not None else [0.0] * len(items), items))
    in_flight = sent = 0
    handed_over = False
    if offsets is not None and concurrency is None and max_in_flight is None and duration_s is None \
            and getattr(engine, "accepts_future_arrivals", False):
        for offset, item in pending:      # the engine waits for each arrival itself (an HTTP client's event loop)
            engine.add_request(make_request(item, t0 + offset))
        sent, in_flight = len(pending), len(pending)
        pending.clear()
        handed_over = True
    while pending or engine.has_unfinished():
        now = time.perf_counter()
        if duration_s is not None and now - t0 >= duration_s:
            pending.clear()
        while pending and _admit(pending[0][0], t0, now, concurrency, in_flight, max_in_flight):
            offset, item = pending.popleft()
            arrival = t0 + offset if concurrency is None else now
            engine.add_request(make_request(item, arrival))
            in_flight += 1
            sent += 1
        if engine.has_unfinished():
            for req in (engine.step(wait_s=HANDED_OVER_WAIT_S) if handed_over else engine.step()):
                in_flight -= 1
                on_finish(req)
        elif pending:
            time.sleep(max(0.0, min(t0 + pending[0][0] - time.perf_counter(), 0.05)))
    return sent


@contextmanager
def frozen_gc() -> Iterator[None]:
    """Collect once, then keep the collector off everything that exists now, for a timed section.

    With torch and transformers loaded the heap holds ~450k tracked objects, and a full
    (generation 2) collection walks them all: measured 320 ms on the 2-core box, all of it a
    pause for whatever thread triggered it. Inside the timed section that pause landed on the
    first sends of a run (scripts/bench_client.py: queue p99 250-350 ms, docs/client_cpu.md).
    Frozen objects are skipped by every later collection, so the collector only sees what the run
    itself allocates. vLLM freezes its engine's heap after start-up for the same reason
    (vllm.utils.gc_utils.freeze_gc_heap). The collect before is not timed: enter this before
    starting the clock. Unfrozen on exit so the objects can be collected again.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _admit(offset: float, t0: float, now: float, concurrency: int | None, in_flight: int,
           max_in_flight: int | None = None) -> bool:
    if concurrency is not None:
        return in_flight < concurrency
    return t0 + offset <= now and (max_in_flight is None or in_flight < max_in_flight)


def run_all(engine: Engine, requests: Iterable[Request]) -> list[Request]:
    """Run already-built requests offline (warm-up, tests)."""
    out: list[Request] = []
    for r in requests:
        engine.add_request(r)
    while engine.has_unfinished():
        out += engine.step()
    return out
