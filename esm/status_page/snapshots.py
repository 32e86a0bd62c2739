"""Status snapshots for the HTTP threads: gathered on a loop of their own, shared while fresh.

The metrics server's threads ask for `current()`. One refresh runs at a time (requests that
arrive meanwhile wait for the same one), a snapshot younger than `fresh_seconds` is served as
is, and no request waits longer than the gathering budget plus a margin: past that it gets the
previous snapshot marked stale. Nothing is gathered while nobody looks at the page.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

# How long the page may spend gathering (the store, the brokers, the lease tables).
BUDGET_SECONDS = 2.5
# A snapshot this young is served again instead of gathering a new one.
FRESH_SECONDS = 1.0
# How much longer than the budget a request waits for a refresh before serving the last one.
WAIT_MARGIN_SECONDS = 1.0
# How long closing waits for the store to close.
CLOSE_SECONDS = 3.0

Gather = Callable[[float], Coroutine[Any, Any, dict[str, Any]]]


class StatusSnapshots:
    def __init__(
        self,
        gather: Gather,
        healthy: Callable[[], bool],
        close: Callable[[], Coroutine[Any, Any, None]] | None = None,
        budget_seconds: float = BUDGET_SECONDS,
        fresh_seconds: float = FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`gather(budget)` returns {"mappings", "unreachable", "gather_seconds"} (see
        esm.status_page.gather); it runs on this object's own event loop."""
        self._gather = gather
        self._healthy = healthy
        self._close = close
        self._budget = budget_seconds
        self._fresh = fresh_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pending: concurrent.futures.Future[dict[str, Any]] | None = None
        self._latest: dict[str, Any] | None = None
        self._latest_at = 0.0

    def current(self) -> dict[str, Any]:
        """The latest snapshot, refreshed first unless it is fresh; never waits past the budget."""
        with self._lock:
            if self._latest is not None and self._clock() - self._latest_at < self._fresh:
                return self._with_daemon(self._latest)
            if self._pending is None:
                self._pending = asyncio.run_coroutine_threadsafe(
                    self._gather(self._budget), self._started_loop()
                )
            pending = self._pending
        try:
            gathered = pending.result(timeout=self._budget + WAIT_MARGIN_SECONDS)
        except concurrent.futures.TimeoutError:
            return self._stale(
                f"gathering the status took longer than {self._budget + WAIT_MARGIN_SECONDS:.2f}s"
            )
        except Exception as err:  # a bug in gathering: the page says so rather than failing
            log.exception("status page: gathering the status failed")
            self._forget(pending)
            return self._stale(f"gathering the status failed: {err!r}")
        with self._lock:
            if self._pending is pending:
                self._pending = None
                self._latest = {"generated_at": self._wall_clock(), **gathered}
                self._latest_at = self._clock()
            latest = self._latest
        assert latest is not None
        return self._with_daemon(latest)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if self._close is not None:
            closing = asyncio.run_coroutine_threadsafe(self._close(), loop)
            try:
                closing.result(timeout=CLOSE_SECONDS)
            except Exception:  # closing is best effort: the daemon is stopping
                log.warning("status page: the store did not close cleanly", exc_info=True)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(timeout=CLOSE_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=CLOSE_SECONDS)

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="status-page", daemon=True)
            self._thread.start()
            self._loop = loop
        return self._loop

    def _forget(self, pending: concurrent.futures.Future[dict[str, Any]]) -> None:
        with self._lock:
            if self._pending is pending:
                self._pending = None

    def _stale(self, problem: str) -> dict[str, Any]:
        with self._lock:
            latest = self._latest
        base = latest or {"generated_at": None, "mappings": [], "unreachable": [], "gather_seconds": None}
        stale = {**base, "stale": True, "unreachable": [problem, *base["unreachable"]]}
        return self._with_daemon(stale)

    def _with_daemon(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        daemon = {"host": socket.gethostname(), "pid": os.getpid(), "healthy": self._healthy()}
        return {"daemon": daemon, **snapshot}


async def _cancel_the_rest() -> None:
    """Cancels what is still running on the loop (a store still connecting, a gathering past its
    budget), so stopping the loop leaves no task behind."""
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=CLOSE_SECONDS)
