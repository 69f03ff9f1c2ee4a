"""Streaming calls to OpenAI-compatible servers: one pool of kept-alive connections, SSE events.

    client = SSEClient(Endpoint.parse("http://127.0.0.1:8000/v1"))   # inside the loop that uses it
    reads = await client.stream_sse("/completions", body, headers, stall_s=60)
    for now, events in reads:
        ...   # the `data:` JSON objects one network read brought, and when it arrived

One event loop and one connection pool serve every request of an arm (as vLLM's benchmark
client does), so hundreds of streams cost no thread each and reuse their sockets. The per-chunk
path is kept short because at 256 streams it runs ~5,000 times a second on the same cores as
the server: each network read is timed when recv() returns it and parsed at once, inside the
connection's data callback (testbed/engines/http1.py), and the caller's task wakes once, when
the stream ends, not once per read. An event carrying "error" ends the stream at once. A
stalled stream is caught by StallGuard, one timer re-armed lazily instead of one per read.
Errors are typed so the engine can decide what to retry: HttpStatusError (non-200, with the
server's OpenAI-style message and Retry-After) and StreamError (connection, protocol or stall).
"""
import asyncio
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from testbed.engines.http1 import ConnectionFailed, Pool, request_bytes


class StreamError(Exception):
    """The connection failed, stalled, or the stream was not what an OpenAI server sends. `reads`:
    what the stream brought before it broke (see SSEClient.stream_sse)."""

    def __init__(self, message: str, reads: list | None = None):
        super().__init__(message)
        self.reads = reads or []


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


class SSEReader:
    """A response body as it comes: an SSE stream's `data:` objects per network read, or, for any
    other answer, its first bytes (for the error message). Every read stamps the stall guard."""

    def __init__(self, guard: StallGuard):
        self.guard, self.parser = guard, SSEParser()
        self.reads: list[tuple[float, list[dict]]] = []
        self.sse, self.limit, self.other = False, 0, bytearray()

    def start(self, status: int, headers: dict[str, str]) -> None:
        self.sse = status == 200 and headers.get("content-type", "").startswith("text/event-stream")
        self.limit = 120 if status == 200 else 65536     # a non-SSE 200 needs only a glimpse; an error its message

    def feed(self, now: float, data: bytes) -> bool:
        """Take one read's body bytes; True ends the exchange: [DONE], an error event, or enough of a non-stream."""
        self.guard.last = now
        if not self.sse:
            self.other += data[:self.limit - len(self.other)]
            return len(self.other) >= self.limit
        events = self.parser.feed(data)
        if not events:
            return self.parser.done
        if self.reads and self.reads[-1][0] == now:      # one read, several chunked frames
            self.reads[-1][1].extend(events)
        else:
            self.reads.append((now, events))
        # a server that gave up mid-stream (vLLM sends an error event, then may linger): end it now
        return self.parser.done or any("error" in e for e in events)


class SSEClient:
    """Streaming calls to one OpenAI-compatible endpoint over kept-alive pooled connections.
    Made inside the event loop that uses it."""

    def __init__(self, ep: Endpoint, connect_s: float = 10.0):
        self.ep = ep
        self.pool = Pool(ep.host, ep.port, tls=ep.scheme == "https", connect_s=connect_s)
        host = f"[{ep.host}]" if ":" in ep.host else ep.host                  # an IPv6 literal
        self.host = host if ep.port == (443 if ep.scheme == "https" else 80) else f"{host}:{ep.port}"

    async def stream_sse(self, route: str, body: bytes, headers: dict, stall_s: float) -> list[tuple[float, list[dict]]]:
        """POST `body` (JSON) to base path + route; returns, per network read that completed events,
        (perf_counter when the read arrived, its `data:` objects), up to `data: [DONE]` or the body's
        end. Raises HttpStatusError for a non-200 answer and StreamError for a refused, reset, stalled
        or non-SSE stream; a StreamError holds the reads that came before it (`.reads`)."""
        hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream", **headers}
        request = request_bytes("POST", self.ep.path + route, self.host, hdrs, body)
        guard = StallGuard(stall_s)
        reader = SSEReader(guard)
        try:
            conn = await self.pool.connect()
            status, resp_headers = await conn.exchange(request, reader)
        except asyncio.CancelledError:
            if not guard.fired:
                raise                                      # aborted, or the request timeout: not ours
            if hasattr(guard.task, "uncancel"):            # 3.11+: the task is not being cancelled any more
                guard.task.uncancel()
            raise StreamError(f"stalled: no bytes within timeout_s={stall_s:g}", reader.reads) from None
        except ConnectionFailed as e:
            raise StreamError(str(e), reader.reads) from None
        finally:
            guard.close()
        if status != 200:
            raise HttpStatusError(status, error_message(bytes(reader.other)), retry_after(resp_headers.get("retry-after")))
        if not reader.sse:
            kind = resp_headers.get("content-type", "")
            raise StreamError(f"not an SSE stream (content-type {kind!r}): {bytes(reader.other)!r}")
        events = reader.parser.close()
        if events:
            reader.reads.append((time.perf_counter(), events))
        return reader.reads

    async def open_connections(self, n: int, headers: dict, timeout_s: float) -> list[str]:
        """Fill the pool with `n` kept-alive connections: `n` GETs of base path + /models at once, each
        on a connection of its own and read to its end. Any HTTP answer counts, a 404 too: the
        connection is made. Returns the reason of each GET that got no answer (refused, reset, none
        within `timeout_s`)."""
        request = request_bytes("GET", self.ep.path + "/models", self.host, headers)

        async def one() -> str | None:
            try:
                await within(self._get(request), timeout_s)
                return None
            except asyncio.TimeoutError:
                return f"no answer to GET {self.ep.path}/models within timeout_s={timeout_s:g}"
            except ConnectionFailed as e:
                return str(e)
        return [r for r in await asyncio.gather(*(one() for _ in range(n))) if r is not None]

    async def _get(self, request: bytes) -> None:
        conn = await self.pool.connect(fresh=True)
        await conn.exchange(request, _Discard())   # then back in the pool; cancelled: closed

    def close(self) -> None:
        self.pool.close()


class _Discard:
    def start(self, status: int, headers: dict[str, str]) -> None:
        pass

    def feed(self, now: float, data: bytes) -> bool:
        return False


async def within(coro, seconds: float):
    """`coro` cancelled after `seconds` (asyncio.TimeoutError). On 3.11+ it runs in the caller's task:
    asyncio.wait_for wraps it in a new task, whose first step waits a turn of the loop, and at 256
    streams a turn is other streams' chunks handled before this request leaves."""
    if not hasattr(asyncio, "timeout"):
        return await asyncio.wait_for(coro, seconds)
    async with asyncio.timeout(seconds):
        return await coro


def read_events(reads) -> tuple[list, list[float], str | None, dict | None]:
    """(chunks as (time, text, ids), the time of every event with choices, the finish reason, the usage)
    of a stream's reads; an error event raises (the server gave up mid-stream)."""
    chunks: list[tuple[float, str, list[int] | None]] = []
    times: list[float] = []           # every event with choices, as vLLM's client times them
    reason, usage = None, None
    for now, events in reads:
        for event in events:
            if "error" in event:
                raise RuntimeError(f"server error mid-stream: {event['error']}")
            usage = event.get("usage") or usage
            choices = event.get("choices")
            if not choices:
                continue
            times.append(now)
            for choice in choices:
                text, ids = chunk_content(choice)
                if text or ids:
                    chunks.append((now, text, ids))
                reason = choice.get("finish_reason") or reason
    return chunks, times, reason, usage


def chunk_content(choice: dict) -> tuple[str, list[int] | None]:
    """(new text, its token ids if the server sent them) of one streamed choice (completions or chat)."""
    delta = choice.get("delta")
    text = (delta.get("content") or "") if isinstance(delta, dict) else (choice.get("text") or "")
    ids = choice.get("token_ids")
    return text, list(ids) if ids is not None else None


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
