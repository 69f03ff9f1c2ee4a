"""HTTP/1.1 client connections for the openai engine: kept-alive, pooled, each response parsed by
httptools inside the socket's data callback.

    pool = Pool(host, port, tls=False, connect_s=10)      # inside the event loop that will use it
    conn = await pool.connect()
    status, headers = await conn.exchange(request_bytes, reader)   # a Reader: start(), feed()
    # the connection goes back to the pool by itself once its response has ended

Why not aiohttp, which this replaced: a streamed response there reaches the caller through a
StreamReader, a future and a task wake-up per network read, and each read is timed when the
caller's task resumes, after every other callback of that loop turn. At 256 streams that path
runs ~5,000 times a second; it cost 85-89 us of CPU per chunk against 52-61 us here, on the same
event loop (docs/client/s15_micro.py, docs/client_cpu.md session 15). Here a read is timed when
recv() returned it, and the caller's task wakes once, when the response ends.
httptools (llhttp, the parser uvicorn uses) does the HTTP/1.1 parsing and de-chunking; what is
left here is the connection's life: connect, one exchange at a time, keep-alive, close.
A body that ends with the connection (no length, not chunked) ends at EOF, as HTTP/1.1 says.
"""
import asyncio
import ssl
import time
from typing import Callable, Protocol

import httptools


class Reader(Protocol):
    """What a response is handed to: its status and headers, then its body per network read."""

    def start(self, status: int, headers: dict[str, str]) -> None: ...

    def feed(self, now: float, data: bytes) -> bool:
        """`data` came in the read that arrived at perf_counter `now`; True ends the exchange at once
        (the rest of the body is dropped as it comes). An exception fails the exchange."""


class _Stop(Exception):
    """Raised from a parser callback to stop parsing (httptools then raises HttpParserCallbackError)."""


class ConnectionFailed(Exception):
    """The connection was refused, reset or closed, or what came back is not HTTP; the message says which."""


class Connection(asyncio.Protocol):
    """One TCP connection: one exchange at a time, then back to the pool (`idle`) once its response
    has ended, or closed. A caller may leave before the response ends (its reader had what it
    wanted, e.g. `data: [DONE]` before the body's last chunk): the rest is read and dropped, and
    the connection goes back to the pool only then, or is closed after DRAIN_S."""
    DRAIN_S = 1.0

    def __init__(self, idle: Callable[["Connection"], None], forget: Callable[["Connection"], None]):
        self.idle, self.forget = idle, forget         # told when it may be reused / when it is gone
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.done: asyncio.Future | None = None       # the caller's wait; None once it has left
        self.reader: Reader | None = None
        self.drain: asyncio.TimerHandle | None = None
        self.now = 0.0
        self.status, self.headers, self.headers_done, self.framed = 0, {}, False, False
        self.complete, self.keep = False, False

    async def exchange(self, request: bytes, reader: Reader) -> tuple[int, dict[str, str]]:
        """Send `request` and hand the response body to `reader` as it comes; returns (status, headers
        with lower-case names) when the response ends or the reader ends it. Cancelling it closes
        the connection."""
        self.done, self.reader = asyncio.get_running_loop().create_future(), reader
        self.status, self.headers, self.headers_done, self.complete = 0, {}, False, False
        ok = False
        try:
            self.transport.write(request)
            await self.done
            ok = True
            return self.status, self.headers
        finally:
            self.done = self.reader = None
            if not ok or self.closed:
                self.close()
            elif self.complete:
                self._settle()
            else:
                self.drain = asyncio.get_running_loop().call_later(self.DRAIN_S, self.close)

    def close(self) -> None:
        self.closed = True
        if self.drain is not None:
            self.drain.cancel()
        if self.transport is not None:
            self.transport.abort()

    def _settle(self) -> None:
        """The response has ended and nobody waits on it: reuse the connection, or close it."""
        if self.drain is not None:
            self.drain.cancel()
            self.drain = None
        if self.keep and not self.closed:
            self.idle(self)
        else:
            self.close()

    def _end(self, error: Exception | None = None) -> None:
        if self.done is not None and not self.done.done():
            if error is not None:
                self.done.set_exception(error)
            else:
                self.done.set_result(None)

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.done is None and self.drain is None:   # bytes nobody asked for: out of step
            self.close()
            return
        self.now = time.perf_counter()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            pass                          # on_body stopped the parser, and failed the exchange
        except httptools.HttpParserError as e:
            self._end(ConnectionFailed(f"not an HTTP response ({e}): {data[:80]!r}"))
            self.close()

    def eof_received(self) -> bool:
        return False                      # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.forget(self)
        if self.drain is not None:
            self.drain.cancel()
        if self.headers_done and not self.framed and exc is None:
            self._end()                   # a body delimited by the connection's end has ended
        else:
            why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
            self._end(ConnectionFailed(f"connection closed or reset by the server mid-response{why}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status, self.headers_done = self.parser.get_status_code(), True
        self.framed = "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "")
        if self.reader is not None:
            self.reader.start(self.status, self.headers)

    def on_body(self, body: bytes) -> None:
        if self.done is None or self.done.done():
            return                        # the caller has left: the rest of the body is dropped
        try:
            if self.reader.feed(self.now, body):
                self._end()
        except Exception as e:            # the reader refused the body (not JSON, say): the exchange fails with it
            self._end(e)
            raise _Stop from None         # halts the parser; data_received expects it

    def on_message_complete(self) -> None:
        self.complete, self.keep = True, self.parser.should_keep_alive()
        if self.done is not None:
            self._end()                   # the caller's exchange() settles the connection
        else:
            self._settle()                # drained after the caller left


class Pool:
    """Kept-alive connections to one host. No limit of its own: the caller's semaphore bounds how
    many are in use, so at most that many are ever open. close() closes every one, in use or not."""

    def __init__(self, host: str, port: int, tls: bool, connect_s: float):
        self.host, self.port, self.connect_s = host, port, connect_s
        self.ssl = ssl.create_default_context() if tls else None
        self.idle: list[Connection] = []
        self.every: set[Connection] = set()

    async def connect(self, fresh: bool = False) -> Connection:
        """An idle connection the server has not closed, else a new one (`fresh`: always new)."""
        while self.idle and not fresh:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Connection(self.idle.append, self.every.discard), self.host, self.port,
                                       ssl=self.ssl,
                                       server_hostname=self.host if self.ssl else None), self.connect_s)
        except asyncio.TimeoutError:
            raise ConnectionFailed(f"no connection within {self.connect_s:g} s") from None
        except OSError as e:
            raise ConnectionFailed(f"connection refused or server unreachable ({type(e).__name__}: {e})") from None
        self.every.add(conn)
        return conn

    def close(self) -> None:
        for conn in list(self.every):
            conn.close()
        self.every.clear()
        self.idle.clear()


def request_bytes(method: str, target: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """An HTTP/1.1 request; a header name or value holding a line break is refused (ValueError)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
