"""An asyncio event loop whose timers fire within ~0.1 ms instead of up to 1 ms late.

    loop = new_precise_loop()          # the openai engine's client loop: sends on schedule

asyncio waits for its next timer in epoll_wait, whose timeout is whole milliseconds, rounded
up: a request scheduled to leave in 2.3 ms leaves after 3 ms. At 256 steady streams that was
most of the client's median queue time (send - scheduled arrival ~0.8 ms, docs/client_cpu.md).
PreciseEpollSelector waits the whole milliseconds in epoll as before, then the rest in
select() on the epoll descriptor itself: select's timeout is in microseconds, and an epoll
descriptor is readable as soon as one of its sockets has an event, so network I/O still wakes
the loop at once. Nothing spins, and a timer never fires early (select waits at least its
timeout). Costs one more system call per timer wake.
"""
import asyncio
import math
import select
import selectors
import time

FD_SETSIZE = 1024        # select() takes no descriptor at or above this


class PreciseEpollSelector(selectors.EpollSelector):
    def select(self, timeout: float | None = None):
        if timeout is None or timeout <= 0 or self._selector.fileno() >= FD_SETSIZE:
            return super().select(timeout)
        deadline = time.monotonic() + timeout        # the clock asyncio's loop.time() reads
        whole_ms = math.floor(timeout * 1e3)         # what epoll can wait without overshooting
        if whole_ms > 0:
            # half a millisecond under: the parent rounds up to whole ms, and ms * 1e-3 * 1e3 can round to ms + 1
            ready = super().select((whole_ms - 0.5) * 1e-3)
            if ready:
                return ready
        rest = deadline - time.monotonic()
        if rest > 0:
            select.select([self._selector.fileno()], [], [], rest)
        return super().select(0)


def new_precise_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(PreciseEpollSelector())
