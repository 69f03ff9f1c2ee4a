"""SIGTERM behaves like Ctrl-C while a run measures: the runner keeps the requests measured so far
and writes a summary marked incomplete (a plain SIGTERM would kill the process with no summary).

    restore = sigterm_as_interrupt()      # from here a SIGTERM raises KeyboardInterrupt
    try: ...
    finally: restore()
"""
import signal
import threading
from typing import Callable


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def sigterm_as_interrupt() -> Callable[[], None]:
    """Install the handler; returns the function that puts the previous one back. Only the main thread
    may set handlers, so elsewhere (a run inside a server thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)
