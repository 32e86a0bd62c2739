"""Batch cutting: when a buffered run of records becomes one invocation.

A batch is cut when it reaches BatchSize, when the batching window has passed, or before its
payload would pass the synchronous invoke limit (6 MB). `BatchLimits.ready` is the pure
decision; `RecordBuffer` is the per-shard queue the source fills and the shard consumer drains.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
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

    def take(self, sizes: Sequence[int]) -> int:
        """How many of the leading records fit one batch (at least one: an oversize record goes alone)."""
        if not sizes:
            return 0
        # The leading records whose running total stays within max_bytes (C loops: this runs
        # per record at full speed).
        running = list(accumulate(islice(sizes, self.max_records)))
        return max(1, bisect_right(running, self.max_bytes))


class RecordBuffer(Generic[R]):
    """An in-order, bounded-by-the-source queue of one shard's records with their payload sizes.

    The source appends from the event loop; one shard consumer takes batches. `window_started`
    is when the oldest buffered record arrived (Kafka's window starts at the first record).
    Records and sizes are lists read from `_head` on, so a batch is taken as one slice, not
    record by record; the taken part is dropped once it outgrows the rest.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._records: list[R] = []
        self._sizes: list[int] = []
        self._head = 0  # records before it were taken
        self._bytes = 0
        self._window_started = 0.0
        self._changed = asyncio.Event()
        # Set by the source when nothing will ever follow (the shard ended).
        self._closed = False

    def __len__(self) -> int:
        return len(self._records) - self._head

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
        return self._closed and len(self) == 0

    def extend(self, records: list[R], sizes: list[int]) -> None:
        if not records:
            return
        if len(self) == 0:
            self._window_started = self._clock()
        self._records.extend(records)
        self._sizes.extend(sizes)
        self._bytes += sum(sizes)
        self._changed.set()

    def clear(self) -> None:
        self._records.clear()
        self._sizes.clear()
        self._head = 0
        self._bytes = 0
        self._changed.set()

    def take(self, limits: BatchLimits) -> tuple[list[R], int]:
        """Removes and returns the next batch's records and its estimated payload size."""
        head = self._head
        n = limits.take(self._sizes[head : head + limits.max_records] if head else self._sizes)
        records = self._records[head : head + n]
        size = sum(self._sizes[head : head + n])
        self._head = head = head + n
        if head >= len(self._records) - head:  # as much taken as left: drop the taken part
            del self._records[:head], self._sizes[:head]
            self._head = 0
        self._bytes -= size
        # The remainder keeps the window it arrived in: restarting it here would add a whole
        # window of latency to records that have already waited.
        return records, size

    async def wait_ready(self, limits: BatchLimits, stop: asyncio.Event) -> bool:
        """Waits until a batch is ready (True), or `stop` is set or the buffer is drained (False)."""
        while not stop.is_set():
            if self._closed:
                return len(self) > 0
            now = self._clock()
            if limits.ready(len(self), self._bytes, self._window_started, now):
                return True
            timeout = None
            if len(self):
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
