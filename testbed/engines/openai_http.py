"""A streaming client for OpenAI-compatible servers: one pooled aiohttp session, keep-alive, SSE events.

    client = new_client(concurrency=256)                 # inside the event loop that will use it
    async for now, events in stream_sse(client, Endpoint.parse("http://127.0.0.1:8000/v1"), "/completions",
                                        payload, headers, stall_s=60):
        ...   # the `data:` JSON objects one network read brought, and when it arrived

One event loop and one connection pool serve every request of an arm (as vLLM's benchmark
client does), so hundreds of streams cost no thread each and reuse their sockets. aiohttp, not
httpx: on this 2-core box 256 streams of 8 chunks cost 0.15 CPU-s with aiohttp and 1.4 with
httpx (scripts/bench_client.py measures the engine itself).
The per-chunk path is kept short because at 256 streams it runs ~5,000 times a second on the
same cores as the server: the body is read as it comes (one await per network read, not one per
line), split into lines by SSEParser, and timed once per read (events that came in one read
arrived together). A stalled stream is caught by StallGuard, which re-arms lazily, instead of
aiohttp's sock_read timeout, which cancels and re-schedules a timer on every read.
Errors are typed so the engine can decide what to retry: HttpStatusError (non-200, with the
server's OpenAI-style message and Retry-After) and StreamError (connection, protocol or stall).
"""
import asyncio
import json
import time
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import urlsplit

import aiohttp


class StreamError(Exception):
    """The connection failed, stalled, or the stream was not what an OpenAI server sends."""


class HttpStatusError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.retry_after = status, message, retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    path: str                  # the base path, e.g. /v1

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port]/path, got {url!r}")
        return cls(u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80), u.path.rstrip("/"))

    def url(self, route: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}{route}"


def new_client(concurrency: int, connect_s: float = 10.0) -> aiohttp.ClientSession:
    """A pooled session: up to `concurrency` kept-alive connections. No read timeout here: stream_sse
    watches for stalls itself (StallGuard)."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


class StallGuard:
    """Cancels the current task when no bytes came for `stall_s`. A read only stamps `last`; the one
    timer looks at it when it fires and re-arms for the time left, so a steady stream costs one
    timer per `stall_s` instead of a cancel and a new timer per read."""

    def __init__(self, stall_s: float):
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        self.stall_s, self.last, self.fired = stall_s, time.perf_counter(), False
        self.handle = self.loop.call_later(stall_s, self._check)

    def _check(self) -> None:
        left = self.last + self.stall_s - time.perf_counter()
        if left > 0:
            self.handle = self.loop.call_later(left, self._check)
        else:
            self.fired = True
            self.task.cancel()

    def close(self) -> None:
        self.handle.cancel()


class SSEParser:
    """Bytes as they arrive in, the `data:` JSON objects of complete lines out; a line cut across
    reads waits for its end. Blank separators, comments and other fields are skipped."""

    def __init__(self):
        self.tail, self.done = b"", False

    def feed(self, data: bytes) -> list[dict]:
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        return self._parse(lines)

    def close(self) -> list[dict]:
        """The body ended: a last line without its newline still counts."""
        lines, self.tail = [self.tail], b""
        return self._parse(lines)

    def _parse(self, lines: list[bytes]) -> list[dict]:
        events = []
        for line in lines:
            if self.done or not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                self.done = True
                continue
            try:
                events.append(json.loads(data.decode()))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise StreamError(f"not JSON in the stream: {data[:120]!r}") from None
        return events


async def stream_sse(client: aiohttp.ClientSession, ep: Endpoint, route: str, payload: dict | bytes,
                     headers: dict, stall_s: float) -> AsyncIterator[tuple[float, list[dict]]]:
    """POST `payload` (a dict, or its JSON already encoded) to base path + route; per network read that
    completed events, yield (perf_counter when the read arrived, its `data:` objects). Ends at
    `data: [DONE]` or the body's end. The caller must not await anything else while iterating
    (StallGuard cancels the task)."""
    hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream", **headers}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    guard = StallGuard(stall_s)
    try:
        async with client.post(ep.url(route), data=body, headers=hdrs) as resp:
            await _check_response(resp)
            parser = SSEParser()
            async for data in resp.content.iter_any():
                guard.last = now = time.perf_counter()
                events = parser.feed(data)
                if events:
                    yield now, events
                if parser.done:
                    return
            events = parser.close()
            if events:
                yield time.perf_counter(), events
    except asyncio.CancelledError:
        if not guard.fired:
            raise                                      # aborted, or the request timeout: not ours
        if hasattr(guard.task, "uncancel"):            # 3.11+: the task is not being cancelled any more
            guard.task.uncancel()
        raise StreamError(f"stalled: no bytes within timeout_s={stall_s:g}") from None
    except asyncio.TimeoutError:
        raise StreamError("no connection within 10 s") from None
    except aiohttp.ClientError as e:
        raise StreamError(f"{_reason(e)} ({type(e).__name__}: {e})") from None
    finally:
        guard.close()


async def open_connections(client: aiohttp.ClientSession, ep: Endpoint, n: int, headers: dict,
                           timeout_s: float) -> list[str]:
    """Fill the pool with `n` kept-alive connections: `n` GETs of base path + /models at once (none can
    finish and hand its connection on before the others have connected), each read to its end so its
    connection goes back to the pool. Any HTTP answer counts, a 404 too: the connection is made.
    Returns the reason of each GET that got no answer (refused, reset, none within `timeout_s`)."""
    limit = aiohttp.ClientTimeout(total=timeout_s)

    async def one() -> str | None:
        try:
            async with client.get(ep.url("/models"), headers=headers, timeout=limit) as resp:
                await resp.read()
            return None
        except asyncio.TimeoutError:
            return f"no answer to GET {ep.path}/models within timeout_s={timeout_s:g}"
        except aiohttp.ClientError as e:
            return f"{_reason(e)} ({type(e).__name__}: {e})"
    return [r for r in await asyncio.gather(*(one() for _ in range(n))) if r is not None]


async def within(coro, seconds: float):
    """`coro` cancelled after `seconds` (asyncio.TimeoutError). On 3.11+ it runs in the caller's task:
    asyncio.wait_for wraps it in a new task, whose first step waits a turn of the loop, and at 256
    streams a turn is other streams' chunks handled before this request leaves."""
    if not hasattr(asyncio, "timeout"):
        return await asyncio.wait_for(coro, seconds)
    async with asyncio.timeout(seconds):
        return await coro


async def _check_response(resp: aiohttp.ClientResponse) -> None:
    if resp.status != 200:
        body = await resp.read()
        raise HttpStatusError(resp.status, error_message(body), retry_after(resp.headers.get("Retry-After")))
    kind = resp.headers.get("Content-Type", "")
    if not kind.startswith("text/event-stream"):
        body = await resp.content.read(120)
        raise StreamError(f"not an SSE stream (content-type {kind!r}): {body!r}")


def _reason(e: aiohttp.ClientError) -> str:
    """What a transport failure means for a benchmark reader."""
    if isinstance(e, aiohttp.ClientConnectorError):
        return "connection refused or server unreachable"
    if isinstance(e, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
        return "connection closed or reset by the server mid-response"
    return "HTTP failure"


def error_message(body: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, or the body's start."""
    try:
        err = json.loads(body).get("error")
        return err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return body[:200].decode(errors="replace")


def retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
