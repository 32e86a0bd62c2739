import asyncio

import pytest

from esm.shard.batching import ENVELOPE_RESERVE_BYTES, INVOKE_PAYLOAD_LIMIT_BYTES, BatchLimits, RecordBuffer

MB = 1024 * 1024
LIMIT = INVOKE_PAYLOAD_LIMIT_BYTES - ENVELOPE_RESERVE_BYTES


@pytest.mark.parametrize(
    ("count", "size", "started", "now", "limits", "ready"),
    [
        (0, 0, 0.0, 100.0, BatchLimits(10, 0.0), False),  # nothing buffered
        (1, 10, 0.0, 0.0, BatchLimits(10, 0.0), True),  # window 0: at once
        (9, 90, 0.0, 0.4, BatchLimits(10, 0.5), False),  # window still open
        (9, 90, 0.0, 0.5, BatchLimits(10, 0.5), True),  # window passed
        (10, 100, 0.0, 0.1, BatchLimits(10, 0.5), True),  # BatchSize reached
        (3, 6 * MB, 0.0, 0.1, BatchLimits(10, 0.5), True),  # payload limit reached
    ],
)
def test_ready(count: int, size: int, started: float, now: float, limits: BatchLimits, ready: bool) -> None:
    assert limits.ready(count, size, started, now) is ready


@pytest.mark.parametrize(
    ("sizes", "limits", "taken"),
    [
        ([1, 1, 1], BatchLimits(2, 0), 2),  # cut at BatchSize
        ([1, 1, 1], BatchLimits(10, 0), 3),  # everything fits
        ([3 * MB, 3 * MB, 1], BatchLimits(10, 0), 1),  # the second would pass 6 MB
        ([LIMIT // 2, LIMIT // 2, 1], BatchLimits(10, 0), 2),  # exactly at the limit
        ([7 * MB, 1], BatchLimits(10, 0), 1),  # an oversize record goes alone
        ([1, 7 * MB], BatchLimits(10, 0), 1),  # ... and is not joined to the one before
        ([1, 1, 1], BatchLimits(1, 0), 1),
        ([], BatchLimits(10, 0), 0),
    ],
)
def test_take(sizes: list[int], limits: BatchLimits, taken: int) -> None:
    assert limits.max_bytes == LIMIT
    assert limits.take(sizes) == taken


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_buffer_takes_in_order_and_tracks_bytes() -> None:
    buffer: RecordBuffer[str] = RecordBuffer(FakeClock())
    buffer.extend(["a", "b", "c"], [10, 20, 30])
    records, size = buffer.take(BatchLimits(2, 0))
    assert (records, size) == (["a", "b"], 30)
    assert len(buffer) == 1 and buffer.size_bytes == 30
    buffer.clear()
    assert len(buffer) == 0 and buffer.size_bytes == 0


async def test_buffer_keeps_order_across_takes_and_refills() -> None:
    """The buffer drops what was taken only now and then: order, count and bytes hold through."""
    buffer: RecordBuffer[int] = RecordBuffer(FakeClock())
    expected = list(range(1000))
    buffer.extend(expected[:300], [1] * 300)
    taken: list[int] = []
    fed = 300
    while len(taken) < len(expected):
        records, size = buffer.take(BatchLimits(7, 0))
        taken += records
        assert size == len(records)
        if fed < len(expected) and len(taken) % 5 == 0:
            buffer.extend(expected[fed : fed + 11], [1] * len(expected[fed : fed + 11]))
            fed = min(len(expected), fed + 11)
        elif fed < len(expected) and len(buffer) == 0:
            buffer.extend(expected[fed:], [1] * (len(expected) - fed))
            fed = len(expected)
        assert len(buffer) == fed - len(taken) == buffer.size_bytes
    assert taken == expected


async def test_window_starts_at_first_record_and_waits_for_it() -> None:
    clock = FakeClock()
    buffer: RecordBuffer[str] = RecordBuffer(clock)
    limits = BatchLimits(100, 0.05)
    stop = asyncio.Event()
    clock.now = 5.0
    buffer.extend(["a"], [1])
    assert buffer.window_started == 5.0
    waiter = asyncio.create_task(buffer.wait_ready(limits, stop))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # window open, BatchSize not reached
    buffer.extend(["b"] * 99, [1] * 99)  # reaching BatchSize wakes it
    assert await asyncio.wait_for(waiter, 1) is True


async def test_wait_ready_returns_false_on_stop() -> None:
    buffer: RecordBuffer[str] = RecordBuffer(FakeClock())
    stop = asyncio.Event()
    waiter = asyncio.create_task(buffer.wait_ready(BatchLimits(1, 0), stop))
    await asyncio.sleep(0)
    stop.set()
    assert await asyncio.wait_for(waiter, 1) is False
