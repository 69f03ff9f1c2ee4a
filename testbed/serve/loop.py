"""The engine loop: one thread owns the engine; HTTP handlers talk to it through a queue.

    loop = EngineLoop(plan.new_engine, max_queue=256); loop.start()
    loop.submit(req)          # from any thread; raises Overloaded when max_queue requests are in flight
    loop.abort(req.id)        # from any thread; the loop drops it from the engine between steps

Engines are not thread-safe, so only this thread calls add_request / step / abort_request.
Tokens leave as the engine appends them: a ServedRequest calls its `listener` from
`append_tokens` (on this thread) and the listener hands them to the HTTP side's event loop.

One client cannot take the others down: when a step raises, the loop starts a fresh engine,
replays each unfinished request alone for one token, fails only those that raise again, and
resumes the rest where they were (their prompt plus the tokens already streamed).
"""
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from testbed.engines.base import Engine
from testbed.request import Request

Listener = Callable[[tuple], None]   # ("tokens", ids, now) | ("done", request)
LOG = logging.getLogger("testbed.serve")
PROBE_STEPS = 64          # a replay is one token; chunked prefill of a long prompt takes a few steps


class Overloaded(Exception):
    """The loop already holds max_queue requests."""


@dataclass
class ServedRequest(Request):
    """A Request that reports each append to a listener (the server's per-request stream)."""
    listener: Listener | None = field(default=None, repr=False, compare=False)

    def append_tokens(self, token_ids: list[int], now: float) -> bool:
        n = len(self.output_ids)
        done = super().append_tokens(token_ids, now)
        if self.listener is not None and not self.cancelled and len(self.output_ids) > n:
            self.listener(("tokens", self.output_ids[n:], now))
        return done


@dataclass
class LoopCounters:
    """Monotonic totals since start, read by /metrics (ints: torn reads are harmless)."""
    outcomes: Counter = field(default_factory=Counter)    # stop | length | failed | aborted
    prompt_tokens: int = 0
    generation_tokens: int = 0
    steps: int = 0
    step_seconds: float = 0.0
    engine_errors: int = 0
    ttft_seconds: float = 0.0       # arrival -> first token, summed over requests with tokens
    ttft_count: int = 0


class EngineLoop:
    def __init__(self, new_engine: Callable[[], Engine], max_queue: int = 256):
        self.new_engine = new_engine
        self.engine = new_engine()
        self.max_queue = max_queue
        self.counters = LoopCounters()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._live: dict[str, ServedRequest] = {}      # submitted, not yet completed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._blameless = 0       # engine errors in a row that no single request reproduced
        self._added: set[str] = set()   # ids handed to the engine (loop thread only), not yet completed
        self._thread = threading.Thread(target=self._run, name="engine-loop", daemon=True)

    def start(self) -> "EngineLoop":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._inbox.put(("wake", None))
        self._thread.join(timeout)
        if not self._thread.is_alive():       # the loop thread owns the engine until it has ended
            self.engine.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, req: ServedRequest) -> None:
        with self._lock:
            if len(self._live) >= self.max_queue:
                raise Overloaded(f"{len(self._live)} requests in flight (max_queue {self.max_queue})")
            self._live[req.id] = req
        self._inbox.put(("add", req))

    def abort(self, request_id: str) -> None:
        """Flag the request at once (an engine mid-step may stop it early), then drop it between steps."""
        with self._lock:
            req = self._live.get(request_id)
        if req is not None:
            req.cancelled = True
        self._inbox.put(("abort", request_id))

    def snapshot(self) -> dict[str, int]:
        """Requests in flight by state, and tokens they hold (prompt + output, a KV-use proxy)."""
        with self._lock:
            live = list(self._live.values())
        running = sum(r.status == "running" for r in live)
        return {"running": running, "waiting": len(live) - running,
                "live_tokens": sum(r.num_prompt_tokens + r.num_output_tokens for r in live)}

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain(block=not self.engine.has_unfinished())
            if self.engine.has_unfinished():
                self._step()

    def _drain(self, block: bool) -> None:
        try:
            msg = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
            while True:
                self._handle(*msg)
                msg = self._inbox.get_nowait()
        except queue.Empty:
            pass

    def _handle(self, kind: str, arg) -> None:
        if kind == "add":
            self._added.add(arg.id)
            try:
                self.engine.add_request(arg)
            except Exception as e:    # an engine refusing a request (UserError, ...) fails it alone
                arg.fail(f"{type(e).__name__}: {e}")
                self._complete(arg)
        elif kind == "abort":
            self._abort(arg)

    def _abort(self, request_id: str) -> None:
        with self._lock:
            req = self._live.get(request_id)
        if req is None:
            return                    # finished before the abort arrived
        req.cancelled = True
        if self.engine.abort_request(request_id) is not None:
            req.fail("aborted: the client disconnected")
            self._complete(req)
        # else the engine cannot drop it; it completes (silently) when the engine returns it

    def _step(self) -> None:
        t = time.perf_counter()
        try:
            finished = self.engine.step()
        except Exception as e:        # keep serving: find the request that breaks the engine, fail it alone
            self.counters.engine_errors += 1
            LOG.error("engine step failed; replaying in-flight requests one by one", exc_info=True)
            self._recover(f"engine error: {type(e).__name__}: {e}")
            return
        self._blameless = 0
        self.counters.steps += 1
        self.counters.step_seconds += time.perf_counter() - t
        for req in finished:
            self._complete(req)

    def _recover(self, error: str) -> None:
        """A fresh engine; requests that raise alone fail, the others resume in it. When no request
        raises alone twice running (the fault is in the engine, not a request), everything fails."""
        with self._lock:     # submitted requests still in the inbox are not the engine's yet: they join later
            live = [r for r in self._live.values() if r.id in self._added]
        self._replace_engine()
        culprits = [(r, why) for r in live if not r.done and (why := self._fails_alone(r))]
        self._blameless = 0 if culprits else self._blameless + 1
        for req, why in culprits:
            req.fail(f"{error} (raised again with this request alone: {why})")
        for req in live:
            if req.done or self._blameless > 1:
                if not req.done:
                    req.fail(error)
                self._complete(req)
            else:
                self._handle("add", req)          # prompt + tokens so far; the stream carries on

    def _fails_alone(self, req: Request) -> str | None:
        """Run a copy of `req` alone for one more token on the fresh engine: the error it raises, or None."""
        probe = Request(id=f"probe-{req.id}", prompt_ids=req.prompt_ids + req.output_ids, max_new_tokens=1,
                        sampling=req.sampling, arrival_time=time.perf_counter(), eos_token_ids=req.eos_token_ids)
        try:
            self.engine.add_request(probe)
            for _ in range(PROBE_STEPS):
                if not self.engine.has_unfinished():
                    return None
                self.engine.step()
            self.engine.abort_request(probe.id)
        except Exception as e:
            self._replace_engine()
            return f"{type(e).__name__}: {e}"
        if self.engine.has_unfinished():          # could not drop the probe: start clean
            self._replace_engine()
        return None

    def _replace_engine(self) -> None:
        """A fresh engine; the old one is closed (unless the factory renewed it in place, as vLLM's does)."""
        old, self.engine = self.engine, self.new_engine()
        if old is not self.engine:
            old.close()

    def _complete(self, req: ServedRequest) -> None:
        with self._lock:
            if self._live.pop(req.id, None) is None:
                return
        self._added.discard(req.id)
        c = self.counters
        c.outcomes["aborted" if req.cancelled else req.finish_reason if req.status == "finished" else "failed"] += 1
        c.prompt_tokens += req.num_prompt_tokens
        c.generation_tokens += req.num_output_tokens
        if req.token_times:
            c.ttft_seconds += req.token_times[0] - req.arrival_time
            c.ttft_count += 1
        if req.listener is not None:
            req.listener(("done", req))
