"""Tumbling windows (TumblingWindowInSeconds, Kinesis and DynamoDB Streams): the framing a lane's
batch loop (esm.shard.lane) gets when a mapping has windows. The window logic itself is pure
(esm.shard.tumbling); this is what changes around the one batch loop:

- A batch never mixes windows (`WindowBatcher`): it stops at the first record of a later window
  (BatchSize, the batching window and the 6 MB cut still apply), and that record starts the
  next batch at once (it was already due when the batch before it was cut). The current
  state's JSON size is taken off the 6 MB budget, as the state travels in every event.
- Each invocation carries the state the previous one of its window returned (`{}` first); the
  function must return `{"state": {...}}`. A response without one is a function failure, retried
  per the FailurePolicy; records given up go to the failure sink and the window carries on with
  its last good state. A partial batch response's state is taken for the records before the
  first failed one. A state over 1 MB ends the window early: its final invocation follows at
  once, and the window's later records start again from `{}`.
- A window is complete when a record of a later window was taken, when the buffer is closed and
  drained (shard end: windows do not carry into child shards), or when `watermark()` (how far
  the source has read everything, epoch seconds; polled every `watermark_poll_seconds` while a
  window is open) reaches its end, with nothing left in the buffer (buffered records are taken
  at once then: they may still belong to it). Then the final invocation (no records, the last
  state, `isFinalInvokeForWindow`) is made through the same batch loop; its response only has
  to be a success. Windows in which the function accepted no records (all filtered out or
  given up) get none.
- A failing final invocation is retried per the FailurePolicy (its age counts from the window's
  end). Lambda documents that processing waits until it succeeds, which is what the defaults
  (MaximumRetryAttempts and MaximumRecordAgeInSeconds -1) do; when a policy gives up, the
  window is logged, counted (`windows_given_up`) and checkpointed anyway: no records are left
  to send to the failure sink.
- The checkpoint is deferred: state lives in memory only, so a window's records are
  checkpointed after its final invocation. A takeover or crash re-reads the open window from the
  last checkpoint and rebuilds its state: records may be delivered twice, never lost.
- BisectBatchOnFunctionError is not applied to windowed batches: the mapping passes a
  FailurePolicy with bisect off, and the framing refuses one with it on. Oversize events are
  still halved (before any invocation), and the halves carry the state along in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar, Generic, TypeVar

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, BatchResponse, Verdict, read_batch_response
from esm.shard.batching import BatchLimits, RecordBuffer
from esm.shard.failures import WorkItem
from esm.shard.framing import Job, RecordsJob
from esm.shard.lane import Lane
from esm.shard.tumbling import (
    INITIAL_STATE,
    NO_RECORDS_EVENT,
    StateProblem,
    Window,
    WindowEventFields,
    WindowState,
    check_window_seconds,
    read_state,
    window_event,
    window_for,
)

log = logging.getLogger(__name__)

R = TypeVar("R")

# Takes exactly the next record off the buffer, with its size.
_ONE_RECORD = BatchLimits(max_records=1, window_seconds=0.0)


@dataclass(frozen=True)
class _Taken(Generic[R]):
    """A record taken off the buffer, with its payload size and window."""

    record: R
    size: int
    window: Window


class WindowBatcher(Generic[R]):
    """Cuts a shard's buffered records into batches that each hold one window's records.

    `RecordBuffer.take` cannot put records back, so records are taken one at a time; the one
    that does not fit a batch (the first of a later window, or one past the 6 MB cut) is held
    here and starts the next batch.
    """

    def __init__(
        self,
        buffer: RecordBuffer[R],
        record_time: Callable[[R], float],
        window_seconds: int,
        taken: Callable[[int], None],
    ) -> None:
        self._buffer = buffer
        self._record_time = record_time
        self._window_seconds = check_window_seconds(window_seconds)
        self._taken = taken
        self._held: _Taken[R] | None = None
        # The window of the last record taken: windows only move forward.
        self._latest: Window | None = None

    @property
    def held_window(self) -> Window | None:
        """The window of the record held back from the last batch, if any."""
        return self._held.window if self._held is not None else None

    @property
    def empty(self) -> bool:
        """Nothing held and nothing buffered."""
        return self._held is None and not len(self._buffer)

    @property
    def drained(self) -> bool:
        """The buffer was closed and every record in it made a batch."""
        return self._held is None and self._buffer.drained

    def drop(self) -> int:
        """Drops what is held and buffered (ownership lost); how many records that was."""
        dropped = len(self._buffer) + (1 if self._held is not None else 0)
        self._buffer.clear()
        self._held = None
        return dropped

    def take(self, limits: BatchLimits, window: Window | None) -> tuple[list[R], Window | None]:
        """The next batch within `limits`, all of `window` (None: of the first record's window,
        returned with it). Empty when the next record belongs to a later window."""
        records: list[R] = []
        size = 0
        taken_bytes = 0
        while len(records) < limits.max_records:
            taken = self._held
            if taken is None:
                taken = self._take_one()
                if taken is None:
                    break
                taken_bytes += taken.size
            self._held = None
            if window is None:
                window = taken.window
            if taken.window != window or (records and size + taken.size > limits.max_bytes):
                self._held = taken
                break
            records.append(taken.record)
            size += taken.size
        if taken_bytes:
            self._taken(taken_bytes)
        return records, window

    def _take_one(self) -> _Taken[R] | None:
        if not len(self._buffer):
            return None
        (record,), size = self._buffer.take(_ONE_RECORD)
        self._latest = window_for(self._record_time(record), self._window_seconds, self._latest)
        return _Taken(record, size, self._latest)


@dataclass(frozen=True)
class WindowSettings:
    """A shard's tumbling windows."""

    seconds: int
    shard_id: str
    stream_arn: str
    # How far the shard has been read completely (epoch seconds).
    watermark: Callable[[], float]
    watermark_poll_seconds: float = 0.25


@dataclass
class _OpenWindow(Generic[R]):
    """The window being worked on (or the rest of one that ended early)."""

    window: Window
    state: WindowState = INITIAL_STATE
    # The last record processed (delivered, given up or filtered): checkpointed once it closes.
    last: R | None = None
    # The function accepted records of it: a final invocation is owed.
    invoked: bool = False
    terminated_early: bool = False


class WindowFraming(Generic[R]):
    def __init__(self, lane: Lane[R], settings: WindowSettings) -> None:
        if lane.policy.bisect_on_function_error:
            raise ValueError(
                "BisectBatchOnFunctionError is not applied with TumblingWindowInSeconds: "
                "pass a FailurePolicy with bisect_on_function_error=False"
            )
        self._lane = lane
        self._settings = settings
        self._batcher = WindowBatcher(lane.buffer, lane.format.record_time, settings.seconds, lane.host.taken)
        # Final invocations given up on (their window was checkpointed without them).
        self.windows_given_up = 0
        self.open: _OpenWindow[R] | None = None

    @property
    def window(self) -> Window | None:
        """The window being worked on, for status."""
        return self.open.window if self.open is not None else None

    @property
    def drained(self) -> bool:
        return self._batcher.drained and self.open is None

    def drop(self) -> int:
        return self._batcher.drop()

    async def next_batch(self) -> list[R] | None:
        if self.open is not None and self._open_window_complete():
            await self.close_window()
            return []  # the lane looks at its state again before the next batch
        limits = self._batch_limits()
        if not self._batch_due() and not await self._wait_for_batch(limits):
            if self._batcher.drained and self.open is None:
                return None
            return []  # halted, or time to look at the watermark again
        records, window = self._batcher.take(limits, self.open.window if self.open is not None else None)
        if records and self.open is None:
            assert window is not None
            self.open = _OpenWindow(window)
        return records  # empty when the next record starts a later window: the open one is complete

    def job(self, records: list[R]) -> Job[R]:
        return _WindowRecordsJob(self, self._lane, records)

    async def passed(self, record: R) -> bool:
        # Trailing filtered records are passed when the window is checkpointed.
        assert self.open is not None
        self.open.last = record
        return True

    def _open_window_complete(self) -> bool:
        assert self.open is not None
        held = self._batcher.held_window
        if held is not None:
            return held != self.open.window
        if not self._batcher.empty:
            return False  # buffered records may still be the window's
        return self._lane.buffer.closed or self._settings.watermark() >= self.open.window.end

    def _batch_due(self) -> bool:
        """A batch goes out without waiting: a held record was due already, and once the
        watermark passed the open window's end, buffered records may be all that keeps it open."""
        if self._batcher.held_window is not None:
            return True
        return (
            self.open is not None
            and not self._batcher.empty
            and self._settings.watermark() >= self.open.window.end
        )

    def _batch_limits(self) -> BatchLimits:
        limits = self._lane.limits
        if self.open is None:
            return limits
        # The state travels in every event of the window.
        return replace(limits, max_bytes=max(1, limits.max_bytes - self.open.state.size_bytes))

    async def _wait_for_batch(self, limits: BatchLimits) -> bool:
        """True when a batch is ready; False when halted, drained, or (a window being open) the
        watermark is due another look."""
        timeout = self._settings.watermark_poll_seconds if self.open is not None else None
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see esm.shard.waits
                return await self._lane.buffer.wait_ready(limits, self._lane.host.life.halt)
        except TimeoutError:
            return False

    def event_fields(self, open_window: _OpenWindow[R], final: bool = False) -> WindowEventFields:
        return WindowEventFields(
            window=open_window.window,
            state=open_window.state,
            shard_id=self._settings.shard_id,
            stream_arn=self._settings.stream_arn,
            final=final,
            terminated_early=final and open_window.terminated_early,
        )

    async def close_window(self) -> bool:
        """Makes the open window's final invocation, then checkpoints its records. False when
        the shard was lost or halted first (nothing is checkpointed then)."""
        open_window = self.open
        assert open_window is not None
        if open_window.invoked and not await self._lane.work_through(_FinalInvocation(self, open_window)):
            return False
        if open_window.last is not None and not await self._lane.checkpoint_through(open_window.last):
            return False
        self.open = None
        return True

    def final_given_up(self, open_window: _OpenWindow[R], why: str) -> None:
        self.windows_given_up += 1
        log.error(
            "shard %s: final invocation of window %s given up (%s); the window is checkpointed without it",
            self._lane.name,
            open_window.window,
            why,
        )


class _WindowRecordsJob(RecordsJob[R]):
    """A batch of the open window: the event carries the window's fields and state; the state the
    function returns is taken for the records that succeeded; the checkpoint waits for the
    window's end."""

    def __init__(self, framing: WindowFraming[R], lane: Lane[R], records: list[R]) -> None:
        super().__init__(lane, records)
        self._framing = framing
        # The state the last invocation returned, while it is being settled.
        self._returned: WindowState | None = None

    def payload(self, chunk: Sequence[R]) -> bytes:
        assert self._framing.open is not None
        event = self._services.format.build_event(chunk)
        return window_event(event, self._framing.event_fields(self._framing.open))

    def read(self, outcome: InvokeOutcome, chunk: Sequence[R]) -> BatchResponse:
        self._returned = None
        if outcome.kind is not OutcomeKind.SUCCESS:
            return SUCCEEDED  # the outcome itself says what failed
        reading = read_state(outcome.response)
        if isinstance(reading, StateProblem):
            return BatchResponse(Verdict.FAILED, reason=reading.reason)
        response = SUCCEEDED
        if self._services.report_batch_item_failures:
            response = read_batch_response(outcome.response, partial(self._services.format.index_of, chunk))
        if response.verdict is not Verdict.FAILED:  # a whole-batch failure keeps the last good state
            self._returned = reading
        return response

    async def completed(self, start: int, end: int) -> bool:
        """Takes the returned state for the records that succeeded (all of the item, or those
        before the first failed one); a state over 1 MB closes the window now."""
        state, self._returned = self._returned, None
        framing = self._framing
        open_window = framing.open
        if state is None or open_window is None:
            return True
        if end > start:
            self._services.metrics.records_delivered.inc(end - start)
            open_window.last = self._records[end - 1]
        open_window.state = state
        open_window.invoked = True
        if not state.over_limit:
            return True
        log.info(
            "shard %s: window %s ends early: its state is %d bytes",
            self._lane.name,
            open_window.window,
            state.size_bytes,
        )
        open_window.terminated_early = True
        if not await framing.close_window():
            return False
        framing.open = _OpenWindow(open_window.window)  # the rest of the window starts from {}
        return True

    async def given_up(self, start: int, end: int, why: str) -> bool:
        if end > start and self._framing.open is not None:
            self._framing.open.last = self._records[end - 1]
        return True


class _FinalInvocation(Generic[R]):
    """A window's final invocation: no records, the last state; it only has to succeed. Its age,
    for MaximumRecordAgeInSeconds, counts from the window's end: it is due no earlier, and the
    window's records may be far older (a window is as long as 15 minutes)."""

    ages_before_invoke: ClassVar[bool] = False

    def __init__(self, framing: WindowFraming[R], open_window: _OpenWindow[R]) -> None:
        self._framing = framing
        self._open = open_window

    @property
    def records(self) -> Sequence[R]:
        return ()

    def oldest(self, item: WorkItem) -> float:
        return float(self._open.window.end)

    def payload(self, chunk: Sequence[R]) -> bytes:
        return window_event(NO_RECORDS_EVENT, self._framing.event_fields(self._open, final=True))

    def read(self, outcome: InvokeOutcome, chunk: Sequence[R]) -> BatchResponse:
        return SUCCEEDED

    async def completed(self, start: int, end: int) -> bool:
        return True

    async def given_up(self, start: int, end: int, why: str) -> bool:
        self._framing.final_given_up(self._open, why)
        return True
