"""Fakes for the shard's unit tests: records are ints, the source keeps what was checkpointed, the
invoker answers from a script, and waits pass no real time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from shard_metrics import metrics

from esm.dispatch.outcomes import InvokeOutcome
from esm.shard.batching import BatchLimits
from esm.shard.contracts import Invoker
from esm.shard.failures import Backoff, FailurePolicy
from esm.shard.lane import LaneServices
from esm.shard.metrics import ShardMetrics
from esm.shard.shard import Shard
from esm.shard.sink import FailureSink
from esm.shard.waits import REAL_WAITS, Waits

FAST = FailurePolicy(function_error_backoff=Backoff(0.001, 0.001), transient_backoff=Backoff(0.001, 0.001))


class FakeSource:
    """An int-record source: the record format, the shard's checkpointer and its flow control.
    A record's key is `keys(record)` (None: keyless); its order is its value."""

    def __init__(self, keys: Callable[[int], str | None] = lambda record: None) -> None:
        self.owned = True
        self.checkpoints: list[int] = []
        self.taken_bytes = 0
        self.filtered_out: set[int] = set()
        self.unreadable: set[int] = set()
        self._keys = keys

    def build_event(self, records: Sequence[int]) -> bytes:
        return ",".join(map(str, records)).encode()

    def record_time(self, record: int) -> float:
        return time.time()

    def select(self, records: list[int]) -> list[int]:
        return [r for r in records if r not in self.filtered_out]

    def index_of(self, records: Sequence[int], identifier: object) -> int | None:
        return records.index(identifier) if identifier in records else None  # type: ignore[arg-type]

    def unreadable_positions(self, records: Sequence[int]) -> list[int]:
        return [i for i, r in enumerate(records) if r in self.unreadable]

    def lane_key(self, record: int) -> str | None:
        return self._keys(record)

    def order(self, record: int) -> int:
        return record

    def describe_position(self, record: int) -> str:
        return f"offset {record}"

    async def checkpoint_through(self, record: int) -> bool:
        if not self.owned:
            return False
        self.checkpoints.append(record)
        return True

    def taken(self, size_bytes: int) -> None:
        self.taken_bytes += size_bytes


class ScriptedInvoker:
    """Answers with the given outcomes in turn (then success); can hold a call until released."""

    def __init__(
        self, outcomes: list[InvokeOutcome] | None = None, hold: asyncio.Event | None = None
    ) -> None:
        self.outcomes = list(outcomes or [])
        self.payloads: list[bytes] = []
        self.hold = hold
        self.started = asyncio.Event()

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        self.payloads.append(payload)
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        return self.outcomes.pop(0) if self.outcomes else InvokeOutcome.success(b"null")


class InstantWaits:
    """Waits that pass no real time: each wait is noted, and ends at once unless halted."""

    def __init__(self) -> None:
        self.waited: list[float | None] = []

    async def halted_within(self, halt: asyncio.Event, seconds: float | None) -> bool:
        self.waited.append(seconds)
        await asyncio.sleep(0)  # let others run, as a real wait would
        return halt.is_set()


def shard_of(
    source: FakeSource,
    invoker: Invoker,
    *,
    batch: int = 2,
    policy: FailurePolicy = FAST,
    sink: FailureSink[int] | None = None,
    report_batch_item_failures: bool = False,
    lanes: int = 1,
    waits: Waits = REAL_WAITS,
    shard_metrics: ShardMetrics | None = None,
) -> Shard[int]:
    services: LaneServices[int] = LaneServices(
        format=source,
        invoker=invoker,
        policy=policy,
        metrics=shard_metrics or metrics(),
        limits=BatchLimits(batch, 0.0),
        report_batch_item_failures=report_batch_item_failures,
        waits=waits,
    )
    return Shard("t-0", services, source, lanes=lanes, sink=sink, taken=source.taken)


def feed(shard: Shard[int], records: list[int], size: int = 1) -> None:
    shard.deliver(records, [size] * len(records))
