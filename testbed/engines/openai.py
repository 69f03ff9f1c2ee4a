"""The `openai` engine: every request goes to an OpenAI-compatible server (vLLM, SGLang, TGI,
llama.cpp, a hosted API, or `testbed serve`) as a streaming HTTP call.

    arms:
      remote: {engine: openai, base_url: "http://127.0.0.1:8000/v1", concurrency: 64,
               served_model_name: llama-8b, extra_body: {return_token_ids: true}}

The runner's drive loop owns arrival: add_request() hands the request to one asyncio event loop
(a background thread) with one pool of kept-alive connections, and returns at once; step()
returns whatever finished, waiting at most `poll_s`. `concurrency` is vLLM's --max-concurrency:
at most that many calls in flight, the rest wait in the client. `req.send_time` is when a call
left that queue, so TTFT from arrival = client queue + TTFT from send (both are recorded).

What is sent: the prompt as the runner rendered it (`req.prompt_text`, chat template applied)
to /v1/completions, which makes the server see exactly the in-process prompt (for tokenizers
that add no BOS; else add `extra_body: {add_special_tokens: false}` for vLLM). endpoint: chat
sends that text as one user message, so the server templates it again: only for chat-only APIs.

What is measured: each streamed event that carries choices is timestamped when the network read
that brought it arrived (`req.chunk_times`, vLLM's per-chunk ITL; events that came in one read
share its time); its tokens take that time. Tokens are the server's
ids where it returns them (`token_ids`, vLLM's and testbed serve's `return_token_ids`); else the
local tokenizer splits the streamed text, each token timed by the chunk that completed it.
req.stats["openai"]["token_count_source"] says which: server_token_ids | server_usage (local
split, its count confirmed by the server's usage) | local_tokenizer. Retries (connection errors,
429, 5xx) back off exponentially, honouring Retry-After; a stream that breaks after its first
token fails instead (no duplicated tokens). A read that waits `timeout_s` (a stalled stream) and
a request past `request_timeout_s` fail with the reason. Every attempt's error is kept in
req.stats["openai"]["errors"].
`warm_connections: N` opens N pooled connections when the engine starts (before the runner's
clock), so the first N requests do not each pay a TCP connect inside their TTFT; off by default,
as in `vllm bench serve` (docs/metrics.md).
"""
import asyncio
import json
import queue
import sys
import threading
import time
from typing import Any

from testbed.engines.base import ENGINES, Engine
from testbed.engines.openai_http import Endpoint, HttpStatusError, SSEClient, StreamError, read_events, within
from testbed.engines.openai_options import OpenAIOptions, auth_headers
from testbed.engines.precise_loop import new_precise_loop
from testbed.request import Request

__all__ = ["OpenAIEngine", "OpenAIOptions", "split_tokens"]


class Retry(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, message: str, after: float | None = None):
        super().__init__(message)
        self.after = after


@ENGINES.register("openai")
class OpenAIEngine(Engine):
    Options = OpenAIOptions
    accepts_future_arrivals = True     # drive() may hand over an open-loop schedule up front (then calls step(wait_s=))
    # every sample also reads each child's RSS (a server the caller started): at 100 Hz, with step()'s
    # 2 ms polling, ~1 of the client's 2.8-3.0 CPU-s per 32-request parity pass (docs/parity_cpu.md)
    memory_sample_s = 1.0

    def __init__(self, model, options: OpenAIOptions, sections=None):
        super().__init__(model, options, sections)   # honours no engine-level section: refused at config load
        self.endpoint = Endpoint.parse(options.base_url)
        self.headers = auth_headers(options)
        self.served_model = options.served_model_name or model.spec_id
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        self.tasks: dict[str, tuple[Request, Any]] = {}
        self.lock = threading.Lock()
        self.totals = {"openai_retries": 0, "openai_failed": 0, "openai_requests": 0}
        self.loop = new_precise_loop()             # sends leave at their arrival, not up to 1 ms after
        self.thread = threading.Thread(target=self.loop.run_forever, name="openai-client", daemon=True)
        self.thread.start()
        self.client, self.slots = self._call(self._open())
        self.warm_errors: list[str] = []
        if options.warm_connections:
            self._warm(options.warm_connections)

    async def _open(self):      # the pool's connections belong to the loop they are made in
        return SSEClient(self.endpoint), asyncio.Semaphore(self.options.concurrency)

    def _warm(self, n: int) -> None:
        """Open `n` pooled connections before any request, so no timed request pays a TCP connect (vllm
        bench serve's --num-warmups N at max-concurrency N does the same). A failure is counted with its
        reason and the run goes on: that request's connection is opened when it is sent, as without warming."""
        self.warm_errors = self._call(self.client.open_connections(n, self.headers, self.options.timeout_s))
        self.totals["openai_warm_connections"] = n - len(self.warm_errors)
        self.totals["openai_warm_failed"] = len(self.warm_errors)
        if self.warm_errors:
            print(f"[testbed] warning: engine openai: warm_connections: {len(self.warm_errors)} of {n} failed "
                  f"({self.warm_errors[0]}); those requests connect when sent", file=sys.stderr)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def add_request(self, req: Request) -> None:
        with self.lock:
            self.tasks[req.id] = (req, asyncio.run_coroutine_threadsafe(self._run(req), self.loop))

    def has_unfinished(self) -> bool:
        with self.lock:
            return bool(self.tasks)

    def step(self, wait_s: float | None = None) -> list[Request]:
        """What finished, waiting for the first at most `wait_s` (default poll_s); drive() passes a long
        wait once it holds nothing to admit, so the caller's thread sleeps instead of polling."""
        try:
            out = [self.finished.get(timeout=self.options.poll_s if wait_s is None else wait_s)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self.finished.get_nowait())
            except queue.Empty:
                break
        with self.lock:
            for req in out:
                self.tasks.pop(req.id, None)
        return out

    def abort_request(self, request_id: str) -> Request | None:
        """Drop a request: its task is cancelled, which closes its connection at once."""
        with self.lock:
            entry = self.tasks.pop(request_id, None)
        if entry is None:
            return None
        entry[0].cancelled = True
        entry[1].cancel()
        return entry[0]

    def stats(self) -> dict[str, float]:
        return dict(self.totals)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.client.close)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()

    async def _run(self, req: Request) -> None:
        """One request, under the concurrency limit and the request timeout; always ends on the finished queue."""
        st: dict[str, Any] = {"attempts": 0, "errors": [], "endpoint": self.options.endpoint}
        req.stats["openai"] = st
        try:
            body = json.dumps(self.payload(req)).encode()   # before the arrival: the send path only writes it
        except (TypeError, ValueError) as e:         # a body json cannot encode (e.g. a YAML date in extra_body)
            st["errors"].append(f"request body: {e}")
            req.fail(st["errors"][-1])
            self._finish(req)
            return
        try:
            delay = req.arrival_time - time.perf_counter()
            if delay > 0:                            # handed over ahead of its arrival: wait for it here
                await asyncio.sleep(delay)
            async with self.slots:
                await within(self._attempts(req, st, body), self.options.request_timeout_s)
        except asyncio.TimeoutError:
            st["errors"].append(f"request timed out after request_timeout_s={self.options.request_timeout_s:g}")
            req.fail(st["errors"][-1])
        except asyncio.CancelledError:
            return                                   # aborted: the caller holds it
        self._finish(req)

    async def _attempts(self, req: Request, st: dict, body: bytes) -> None:
        """Attempts with backoff; a retry starts from an empty output (only failures before any token retry)."""
        for attempt in range(self.options.max_retries + 1):
            st["attempts"] = attempt + 1
            try:
                await self._attempt(req, st, body)
                return
            except Retry as e:
                st["errors"].append(str(e))
                if attempt == self.options.max_retries:
                    req.fail(f"{e} (after {attempt + 1} attempts)")
                    return
                with self.lock:
                    self.totals["openai_retries"] += 1
                await asyncio.sleep(min(e.after if e.after is not None else self.options.backoff_s * 2 ** attempt, 30.0))
            except Exception as e:   # a bad response, a bug: fail this request, keep the others going
                st["errors"].append(f"{type(e).__name__}: {e}")
                req.fail(st["errors"][-1])
                return

    def _finish(self, req: Request) -> None:
        with self.lock:
            self.totals["openai_requests"] += 1
            self.totals["openai_failed"] += req.status == "failed"
        self.finished.put(req)

    async def _attempt(self, req: Request, st: dict, body: bytes) -> None:
        req.status = "running"
        req.send_time = time.perf_counter()
        try:
            reads, broke = await self.client.stream_sse("/" + self._route(), body, self.headers,
                                                        self.options.timeout_s), None
        except HttpStatusError as e:
            if e.retryable:
                raise Retry(str(e), e.retry_after) from None
            raise RuntimeError(str(e)) from None
        except StreamError as e:
            reads, broke = e.reads, e
        chunks, times, reason, usage = read_events(reads)
        if broke is not None:
            if not chunks:
                raise Retry(str(broke))
            raise RuntimeError(f"{broke} after {len(chunks)} chunks")
        if reason is None:       # the body ended early: a dropped connection, not an answer
            if not chunks:
                raise Retry("the stream ended without a finish_reason")
            raise RuntimeError(f"the stream ended without a finish_reason after {len(chunks)} chunks")
        req.chunk_times = times
        self._record_tokens(req, chunks, usage, st)
        if not req.done:
            req.finish("stop" if reason == "stop" else "length")

    def _record_tokens(self, req: Request, chunks, usage: dict | None, st: dict) -> None:
        if usage:
            st["server_prompt_tokens"] = usage.get("prompt_tokens")
            st["server_completion_tokens"] = usage.get("completion_tokens")
        if chunks and all(ids is not None for _, _, ids in chunks):
            st["token_count_source"] = "server_token_ids"
            for now, _, ids in chunks:
                if ids and req.append_tokens(ids, now):
                    break
            return
        ids, times = split_tokens(self.model.tokenizer, chunks)
        counted = usage.get("completion_tokens") if usage else None
        st["token_count_source"] = "server_usage" if counted == len(ids) else "local_tokenizer"
        if counted is not None and counted != len(ids):
            st["local_completion_tokens"] = len(ids)
            req.reported_output_tokens = counted     # re-splitting the text lost or made tokens: count the server's
        for tok, now in zip(ids, times):
            if req.append_tokens([tok], now):
                break

    def _route(self) -> str:
        return "chat/completions" if self.options.endpoint == "chat" else "completions"

    def payload(self, req: Request) -> dict:
        sp = req.sampling
        body: dict[str, Any] = {"model": self.served_model, "max_tokens": req.max_new_tokens, "stream": True,
                                "stream_options": {"include_usage": True},
                                "temperature": sp.temperature, "top_p": sp.top_p}
        if sp.seed is not None:
            body["seed"] = sp.seed
        if sp.top_k:
            body["top_k"] = sp.top_k
        if req.ignore_eos:
            body["ignore_eos"] = True          # vLLM's extension; testbed serve honours it too
        if self.options.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": req.prompt_text}]
        else:
            body["prompt"] = req.prompt_text
        return {**body, **self.options.extra_body}


def split_tokens(tokenizer, chunks) -> tuple[list[int], list[float]]:
    """Local token ids of the streamed text, each timed by the chunk in which its last character arrived."""
    text = "".join(t for _, t, _ in chunks)
    if not text:
        return [], []
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends, pos = [], 0
    for now, t, _ in chunks:
        pos += len(t)
        ends.append((pos, now))
    times, k = [], 0
    for _, end in enc["offset_mapping"]:
        while k < len(ends) - 1 and ends[k][0] < end:
            k += 1
        times.append(ends[k][1])
    return list(enc["input_ids"]), times
