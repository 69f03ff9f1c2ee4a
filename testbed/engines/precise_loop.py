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
The kernel may also let any timed wait of a thread overrun by its timer slack (50 us by default)
to batch wake-ups; the loop's thread asks for 1 us on its first wait (Linux; elsewhere a no-op).
"""
import asyncio
import ctypes
import math
import select
import selectors
import time

FD_SETSIZE = 1024        # select() takes no descriptor at or above this
PR_SET_TIMERSLACK = 29   # <linux/prctl.h>


def set_timer_slack(ns: int) -> bool:
    """The calling thread's timer slack (how late the kernel may end its timed waits); False where unsupported."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class PreciseEpollSelector(selectors.EpollSelector):
    slack_set = False

    def select(self, timeout: float | None = None):
        if not self.slack_set:                       # here, not in __init__: the thread that runs the loop waits
            self.slack_set = True
            set_timer_slack(1000)
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
