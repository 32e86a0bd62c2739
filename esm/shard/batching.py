"""Batch cutting: when a buffered run of records becomes one invocation.

A batch is cut when it reaches BatchSize, when the batching window has passed, or before its
payload would pass the synchronous invoke limit (6 MB). `BatchLimits.ready` is the pure
decision; `RecordBuffer` is the per-shard queue the source fills and the shard consumer drains.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

# Lambda's synchronous invocation payload limit (request body).
INVOKE_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
# Record sizes are estimated per record; this leaves room for the event's envelope around them.
ENVELOPE_RESERVE_BYTES = 16 * 1024

R = TypeVar("R")


@dataclass(frozen=True)
class BatchLimits:
    max_records: int
    window_seconds: float
    max_bytes: int = INVOKE_PAYLOAD_LIMIT_BYTES - ENVELOPE_RESERVE_BYTES

    def ready(self, count: int, size: int, window_started: float, now: float) -> bool:
        """Whether buffered records (count, estimated payload size) should go out now."""
        if count == 0:
            return False
        return (
            count >= self.max_records or size >= self.max_bytes or now - window_started >= self.window_seconds
        )

    def take(self, sizes: list[int] | deque[int]) -> int:
        """How many of the leading records fit one batch (at least one: an oversize record goes alone)."""
        total = 0
        for i, size in enumerate(sizes):
            if i == self.max_records or (i > 0 and total + size > self.max_bytes):
                return i
            total += size
        return len(sizes)


class RecordBuffer(Generic[R]):
    """An in-order, bounded-by-the-source queue of one shard's records with their payload sizes.

    The source appends from the event loop; one shard consumer takes batches. `window_started`
    is when the oldest buffered record arrived (Kafka's window starts at the first record).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._records: deque[R] = deque()
        self._sizes: deque[int] = deque()
        self._bytes = 0
        self._window_started = 0.0
        self._changed = asyncio.Event()
        # Set by the source when nothing will ever follow (the shard ended).
        self._closed = False

    def __len__(self) -> int:
        return len(self._records)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def window_started(self) -> float:
        return self._window_started

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """No more records will come (shard end): what is buffered goes out without waiting for
        the window, and `wait_ready` returns False once the buffer is empty."""
        self._closed = True
        self._changed.set()

    @property
    def drained(self) -> bool:
        """Closed and empty: everything this buffer will ever hold has been taken."""
        return self._closed and not self._records

    def extend(self, records: list[R], sizes: list[int]) -> None:
        if not records:
            return
        if not self._records:
            self._window_started = self._clock()
        self._records.extend(records)
        self._sizes.extend(sizes)
        self._bytes += sum(sizes)
        self._changed.set()

    def clear(self) -> None:
        self._records.clear()
        self._sizes.clear()
        self._bytes = 0
        self._changed.set()

    def take(self, limits: BatchLimits) -> tuple[list[R], int]:
        """Removes and returns the next batch's records and its estimated payload size."""
        n = limits.take(self._sizes)
        records = [self._records.popleft() for _ in range(n)]
        size = sum(self._sizes.popleft() for _ in range(n))
        self._bytes -= size
        # The remainder keeps the window it arrived in: restarting it here would add a whole
        # window of latency to records that have already waited.
        return records, size

    async def wait_ready(self, limits: BatchLimits, stop: asyncio.Event) -> bool:
        """Waits until a batch is ready (True), or `stop` is set or the buffer is drained (False)."""
        while not stop.is_set():
            if self._closed:
                return bool(self._records)
            now = self._clock()
            if limits.ready(len(self._records), self._bytes, self._window_started, now):
                return True
            timeout = None
            if self._records:
                timeout = max(0.0, limits.window_seconds - (now - self._window_started))
            self._changed.clear()
            await wait_either(self._changed, stop, timeout)
        return False


async def wait_either(a: asyncio.Event, b: asyncio.Event, timeout: float | None = None) -> None:
    """Until `a` or `b` is set, or `timeout` seconds (None: no limit) have passed."""
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
