"""How a lane's records become batches, and what is done around each batch: the contract a
framing and its jobs follow (esm.shard.lane runs them), and the plain framing, where each batch
stands alone and is checkpointed as soon as it completes. (Tumbling windows are the other
framing: esm.shard.windows.)"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, BatchResponse, read_batch_response
from esm.shard.failures import WorkItem

if TYPE_CHECKING:
    from esm.shard.lane import Lane

R = TypeVar("R")


class Job(Protocol[R]):
    """A batch to work through: its records (none for a window's final invocation), and what the
    framing does around them."""

    # Whether MaximumRecordAgeInSeconds is checked before each invocation (not for a window's
    # final invocation: it carries no records).
    ages_before_invoke: ClassVar[bool]

    @property
    def records(self) -> Sequence[R]: ...

    def oldest(self, item: WorkItem) -> float:
        """When the item's oldest record entered the stream (epoch seconds)."""
        ...

    def payload(self, chunk: Sequence[R]) -> bytes: ...

    def read(self, outcome: InvokeOutcome, chunk: Sequence[R]) -> BatchResponse:
        """What the function's answer says of the chunk (SUCCEEDED unless it failed records)."""
        ...

    async def completed(self, start: int, end: int) -> bool:
        """Records [start, end) succeeded (after every invocation, possibly empty); False when
        the shard was lost."""
        ...

    async def given_up(self, start: int, end: int, why: str) -> bool:
        """Records [start, end) were given to the failure sink (`why`: the policy's condition);
        False when the shard was lost."""
        ...


class Framing(Protocol[R]):
    """How a lane's records become batches, and when their checkpoint is written."""

    async def next_batch(self) -> list[R] | None:
        """The next batch; [] to look again; None when the lane has nothing more (halted, or
        its buffer was closed and drained)."""
        ...

    def job(self, records: list[R]) -> Job[R]: ...

    async def passed(self, record: R) -> bool:
        """The batch's trailing records up to `record` were filtered out; False when lost."""
        ...

    @property
    def drained(self) -> bool:
        """Everything the lane will ever get was taken and settled."""
        ...

    def drop(self) -> int:
        """Drops what waits to be processed (ownership lost); how many records."""
        ...


class RecordsJob(Generic[R]):
    """A plain batch: the source's event; checkpointed as soon as records complete."""

    ages_before_invoke: ClassVar[bool] = True

    def __init__(self, lane: Lane[R], records: list[R]) -> None:
        self._lane = lane
        self._records = records
        self._services = lane.services  # the settings the batch started with, to its end

    @property
    def records(self) -> Sequence[R]:
        return self._records

    def oldest(self, item: WorkItem) -> float:
        return self._services.format.record_time(self._records[item.start])

    def payload(self, chunk: Sequence[R]) -> bytes:
        return self._services.format.build_event(chunk)

    def read(self, outcome: InvokeOutcome, chunk: Sequence[R]) -> BatchResponse:
        services = self._services
        if services.report_batch_item_failures and outcome.kind is OutcomeKind.SUCCESS:
            return read_batch_response(outcome.response, partial(services.format.index_of, chunk))
        return SUCCEEDED

    async def completed(self, start: int, end: int) -> bool:
        if not await self._checkpoint(start, end):
            return False
        if end > start:
            self._services.metrics.records_delivered.inc(end - start)
        return True

    async def given_up(self, start: int, end: int, why: str) -> bool:
        return await self._checkpoint(start, end)

    async def _checkpoint(self, start: int, end: int) -> bool:
        if end <= start:
            return True
        if await self._lane.checkpoint_through(self._records[end - 1]):
            return True
        self._services.metrics.records_abandoned.inc(len(self._records) - start)
        return False


class PlainFraming(Generic[R]):
    """Batches cut from the buffer as they are due (BatchSize, window, 6 MB)."""

    def __init__(self, lane: Lane[R]) -> None:
        self._lane = lane

    async def next_batch(self) -> list[R] | None:
        lane = self._lane
        if not await lane.buffer.wait_ready(lane.limits, lane.host.life.halt):
            return None
        records, size = lane.buffer.take(lane.limits)
        lane.host.taken(size)
        return records

    def job(self, records: list[R]) -> Job[R]:
        return RecordsJob(self._lane, records)

    async def passed(self, record: R) -> bool:
        return await self._lane.checkpoint_through(record)

    @property
    def drained(self) -> bool:
        return self._lane.buffer.drained

    def drop(self) -> int:
        buffer = self._lane.buffer
        dropped = len(buffer)
        buffer.clear()
        return dropped
