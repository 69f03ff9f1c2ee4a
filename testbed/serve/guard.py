"""What keeps one hostile client from taking `testbed serve` down: connection and size limits, deadlines,
and logs that stay small when the process runs out of file descriptors.

    limits = Limits()                                           # the defaults below
    uvicorn.Config(app, http=guarded_h11(limits), limit_concurrency=limits.max_connections, ...)
    rate_limit_logs()                                           # asyncio, uvicorn and the engine loop

uvicorn's h11 protocol holds a connection that never completes its request head forever (a fresh
idle connection, or a slow-loris trickling header bytes, which also resets the keep-alive timer), so
300 idle connections could hold the server's descriptors. `guarded_h11` refuses connections beyond
`max_connections` at once and closes any whose request head is not complete `head_timeout_s` after
the connection opened (or keep_alive_s + head_timeout_s after its previous response ended). Body size and body read time are enforced by
the app (app.read_body), before any JSON parsing or tokenising.
"""
import logging
import time
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass
class Limits:
    max_body_bytes: int = 8 << 20      # a request body; a 4k-token prompt as JSON is ~20 KB
    max_connections: int = 512         # open connections, idle ones included; uvicorn 503s requests beyond
    head_timeout_s: float = 10.0       # from connect (or the previous response) to a complete request head
    body_timeout_s: float = 30.0       # to read a whole request body
    keep_alive_s: float = 15.0         # an idle keep-alive connection is closed after this (pooled clients
                                       # reuse connections; too short and they race the close)


def guarded_h11(limits: Limits) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with a connection cap and a request-head deadline."""

    class GuardedH11(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.abort()            # over the cap: no reply, the descriptor is freed at once
                return
            self._arm_head_deadline()

        def _arm_head_deadline(self, idle_s: float = 0.0) -> None:
            self._head_deadline = self.loop.call_later(idle_s + limits.head_timeout_s, self._head_overdue)

        def _head_overdue(self) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.abort()       # the request head never completed: a slow or idle client

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._head_deadline.cancel()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._head_deadline.cancel()
            self._arm_head_deadline(limits.keep_alive_s)      # uvicorn closes it first if no byte comes

        def connection_lost(self, exc) -> None:
            deadline = getattr(self, "_head_deadline", None)
            if deadline is not None:
                deadline.cancel()
            super().connection_lost(exc)

    return GuardedH11


class RateLimit(logging.Filter):
    """At most `burst` records per message, refilled at `per_s` a second; a traceback only the first time.

    Under descriptor exhaustion asyncio logs every failed accept() with a traceback (60 MB in one
    measured case). Suppressed records are counted and the count rides on the next one let through.
    """

    def __init__(self, per_s: float = 0.2, burst: int = 5):
        super().__init__()
        self.per_s, self.burst = per_s, burst
        self.state: dict[tuple, list] = {}      # key -> [tokens, last time, suppressed, seen before]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200])
        now = time.monotonic()
        tokens, last, dropped, seen = self.state.get(key, [float(self.burst), now, 0, False])
        tokens = min(float(self.burst), tokens + (now - last) * self.per_s)
        if tokens < 1:
            self.state[key] = [tokens, now, dropped + 1, seen]
            return False
        if seen:
            record.exc_info, record.exc_text = None, None
        if dropped:
            record.msg = f"{record.msg} [{dropped} similar messages suppressed]"
        self.state[key] = [tokens - 1, now, 0, True]
        return True


LOGGERS = ("asyncio", "uvicorn.error", "testbed.serve")


def rate_limit_logs() -> RateLimit:
    """Install one RateLimit on the loggers that repeat under load or fd exhaustion (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit())
    return next(f for f in logging.getLogger(LOGGERS[0]).filters if isinstance(f, RateLimit))
