"""Ctrl-C and SIGTERM during the demo: the first stops producing, the second skips the wait for
delivery. Either way the demo goes on to its clean shutdown and summary; nothing is killed here.

The signal handler only counts; the demo's loops read the count on their next tick (a signal
handler must not take locks the interrupted code may hold).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """Raised by a start-up wait when a stop was requested before the demo was running."""


class StopRequests:
    def __init__(self) -> None:
        self.count = 0

    @property
    def stopping(self) -> bool:
        return self.count >= 1

    @property
    def skip_drain(self) -> bool:
        return self.count >= 2

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def raise_if_stopping(self, during: str) -> None:
        if self.stopping:
            raise StopRequested(f"stopped by a signal while {during}")


@contextlib.contextmanager
def handled_signals(requests: StopRequests) -> Iterator[StopRequests]:
    """Route SIGINT and SIGTERM to `requests` for the duration (only possible on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return
    previous = {signum: signal.signal(signum, requests.on_signal) for signum in _SIGNALS}
    try:
        yield requests
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
