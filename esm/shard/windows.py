"""Processes one shard's records in tumbling windows (TumblingWindowInSeconds, Kinesis and
DynamoDB Streams): batch -> invoke with the window's state -> ... -> final invoke -> checkpoint.

The window logic itself is pure (esm.shard.tumbling); this loop is ShardConsumer's (same protocols,
same ownership contract, same `esm.shard.state` life) with these differences:

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
  state, `isFinalInvokeForWindow`) is made; its response only has to be a success. Windows in
  which the function accepted no records (all filtered out or given up) get none.
- A failing final invocation is retried per the FailurePolicy (its age counts from the window's
  end). Lambda documents that processing waits until it succeeds, which is what the defaults
  (MaximumRetryAttempts and MaximumRecordAgeInSeconds -1) do; when a policy gives up, the
  window is logged, counted (`windows_given_up`) and checkpointed anyway: no records are left
  to send to the failure sink.
- State lives in memory only, so a window's records are checkpointed after its final
  invocation. A takeover or crash re-reads the open window from the last checkpoint and
  rebuilds its state: records may be delivered twice, never lost.
- BisectBatchOnFunctionError is not applied to windowed batches: the mapping passes a
  FailurePolicy with bisect off, and the constructor refuses one with it on. Oversize events
  are still halved (before any invocation), and the halves carry the state along in order.

Ownership: `lease_lost()` stops at once, drops the buffer and the window; a result arriving after
the loss is dropped and nothing more is checkpointed. `request_shutdown()` lets the invocation in
flight finish and stops without checkpointing the open window (a final invocation in flight is
finished and checkpointed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, TypeVar

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, BatchResponse, Verdict, read_batch_response
from esm.shard.batching import INVOKE_PAYLOAD_LIMIT_BYTES, BatchLimits, RecordBuffer
from esm.shard.failures import Attempts, Decision, DecisionKind, FailurePolicy, WorkItem
from esm.shard.lane import FailureSink, Invoker, ShardConsumerBase, ShardMetrics, ShardSource
from esm.shard.reporting import log_retry, processing_result
from esm.shard.state import ShardEvent, ShardState
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


class WindowedShardConsumer(ShardConsumerBase[R]):
    def __init__(
        self,
        shard_id: str,
        buffer: RecordBuffer[R],
        limits: BatchLimits,
        source: ShardSource[R],
        invoker: Invoker,
        policy: FailurePolicy,
        metrics: ShardMetrics,
        failure_sink: FailureSink[R] | None = None,
        report_batch_item_failures: bool = False,
        initial_state: ShardState = ShardState.INITIALIZING,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        *,
        window_seconds: int,
        stream_arn: str,
        watermark: Callable[[], float],
        watermark_poll_seconds: float = 0.25,
    ) -> None:
        if policy.bisect_on_function_error:
            raise ValueError(
                "BisectBatchOnFunctionError is not applied with TumblingWindowInSeconds: "
                "pass a FailurePolicy with bisect_on_function_error=False"
            )
        super().__init__(
            shard_id,
            buffer,
            limits,
            source,
            invoker,
            policy,
            metrics,
            failure_sink,
            report_batch_item_failures,
            initial_state,
            wall_clock,
            rand,
        )
        self._batcher = WindowBatcher(buffer, source.record_time, window_seconds, source.taken)
        self._stream_arn = stream_arn
        self._watermark = watermark
        self._watermark_poll_seconds = watermark_poll_seconds
        # Final invocations given up on (their window was checkpointed without them).
        self.windows_given_up = 0
        self._open: _OpenWindow[R] | None = None

    @property
    def window(self) -> Window | None:
        """The window being worked on, for status."""
        return self._open.window if self._open is not None else None

    def _drop_buffered(self) -> int:
        return self._batcher.drop()

    async def run(self) -> None:
        if self.state is ShardState.INITIALIZING:
            self._transition(ShardEvent.INITIALIZED)
        try:
            while self.state is ShardState.PROCESSING:
                if self._open is not None and self._open_window_complete():
                    await self._close_window()
                    continue
                limits = self._batch_limits()
                if not self._batch_due() and not await self._wait_for_batch(limits):
                    if self._batcher.drained and self._open is None:
                        break
                    continue  # halted, or time to look at the watermark again
                records = self._take_batch(limits)
                if records:
                    await self._process(records)
            if self.state is ShardState.PROCESSING:
                # The buffer was closed and drained, and the last window closed.
                self._end_reached()
        finally:
            self._open = None
            self._settle()

    # -- batches -------------------------------------------------------------------------------

    def _open_window_complete(self) -> bool:
        assert self._open is not None
        held = self._batcher.held_window
        if held is not None:
            return held != self._open.window
        if not self._batcher.empty:
            return False  # buffered records may still be the window's
        return self.buffer.closed or self._watermark() >= self._open.window.end

    def _batch_due(self) -> bool:
        """A batch goes out without waiting: a held record was due already, and once the
        watermark passed the open window's end, buffered records may be all that keeps it open."""
        if self._batcher.held_window is not None:
            return True
        return (
            self._open is not None and not self._batcher.empty and self._watermark() >= self._open.window.end
        )

    def _batch_limits(self) -> BatchLimits:
        if self._open is None:
            return self._limits
        # The state travels in every event of the window.
        return replace(self._limits, max_bytes=max(1, self._limits.max_bytes - self._open.state.size_bytes))

    async def _wait_for_batch(self, limits: BatchLimits) -> bool:
        """True when a batch is ready; False when halted, drained, or (a window being open) the
        watermark is due another look."""
        timeout = self._watermark_poll_seconds if self._open is not None else None
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see esm.shard.reporting.halted_within
                return await self.buffer.wait_ready(limits, self._halt)
        except TimeoutError:
            return False

    def _take_batch(self, limits: BatchLimits) -> list[R]:
        """The next batch of the open window, or of the next record's window, which it opens.
        Empty when the next record starts a later window (the open one is complete)."""
        records, window = self._batcher.take(limits, self._open.window if self._open is not None else None)
        if records and self._open is None:
            assert window is not None
            self._open = _OpenWindow(window)
        return records

    async def _process(self, records: list[R]) -> None:
        """Works through one batch of the open window; stops early when the shard is lost or
        halted (the state then says so)."""
        assert self._open is not None
        selected = self._source.select(records)
        if len(selected) < len(records):
            self._metrics.records_filtered.inc(len(records) - len(selected))
        if selected:
            self._metrics.batch_size.observe(len(selected))
            self.current = selected
            try:
                if not await self._work_through(selected):
                    return
            finally:
                self.current = None
        if not selected or selected[-1] is not records[-1]:
            # Trailing filtered records are passed when the window is checkpointed.
            assert self._open is not None
            self._open.last = records[-1]

    async def _work_through(self, records: list[R]) -> bool:
        items: deque[WorkItem] = deque([WorkItem(0, len(records))])
        while items:
            if self.state is not ShardState.PROCESSING:
                return False  # lost, or shutting down: the open window is re-read by the next owner
            open_window = self._open
            assert open_window is not None
            item = items[0]
            self.attempts = item.attempts
            oldest = self._source.record_time(records[item.start])
            decision = self._policy.before_invoke(item, oldest, self._wall_clock())
            chunk = records[item.start : item.end]
            payload = b""
            if decision is None:
                payload = window_event(self._source.build_event(chunk), self._event_fields(open_window))
                if len(payload) > INVOKE_PAYLOAD_LIMIT_BYTES:
                    decision = self._policy.oversize(item)
            outcome: InvokeOutcome | None = None
            accepted: WindowState | None = None
            failure = ""
            if decision is None:
                self._metrics.records_invoked.inc(item.size)
                self._metrics.iterator_age.set(max(0.0, self._wall_clock() - oldest))
                outcome = await self._invoker.invoke(payload)
                if self._lost():
                    self._metrics.records_abandoned.inc(len(records) - item.start)
                    return False
                decision, accepted, failure = self._judge(item, chunk, outcome, oldest)
            if accepted is not None and not await self._accept(records, item, decision, accepted):
                return False
            if decision.kind is DecisionKind.CHECKPOINT:
                self.last_error = None
                self.last_processing_result = "OK"
                items.popleft()
            elif decision.kind is DecisionKind.SPLIT:
                self._metrics.bisects.inc()  # an oversize event halved (bisect-on-error is off)
                items.popleft()
                items.extendleft(reversed(decision.next_items))
            elif decision.kind is DecisionKind.DISCARD:
                if not await self._give_up(records[decision.discard_from : item.end], decision, outcome):
                    return False
                assert self._open is not None
                self._open.last = records[item.end - 1]
                items.popleft()
            else:
                assert outcome is not None
                items[0] = decision.next_items[0]
                if not await self._retry_later(outcome, decision, failure):
                    return False
        self.attempts = Attempts()
        return True

    def _judge(
        self, item: WorkItem, chunk: list[R], outcome: InvokeOutcome, oldest: float
    ) -> tuple[Decision, WindowState | None, str]:
        """The policy's decision on an invocation of `chunk`, the state to take from it, and
        what went wrong (for status when it failed)."""
        response = SUCCEEDED
        state: WindowState | None = None
        if outcome.kind is OutcomeKind.SUCCESS:
            reading = read_state(outcome.response)
            if isinstance(reading, StateProblem):
                response = BatchResponse(Verdict.FAILED, reason=reading.reason)
            else:
                state = reading
                if self._report_item_failures:
                    response = read_batch_response(outcome.response, partial(self._source.index_of, chunk))
        if outcome.kind.function_ran or response is not SUCCEEDED:
            self._metrics.records_failed_invoke.inc(item.size)
        decision = self._policy.decide(item, outcome, self._wall_clock(), oldest, response, self._rand)
        if response.verdict is Verdict.FAILED:
            state = None  # a whole-batch failure: the window keeps its last good state
        return decision, state, _failure_text(outcome, response)

    async def _accept(self, records: list[R], item: WorkItem, decision: Decision, state: WindowState) -> bool:
        """Takes the state the function returned for the records it succeeded with (all of the
        item, or those before the first failed one); a state over 1 MB closes the window now."""
        open_window = self._open
        assert open_window is not None
        done_to = item.end if decision.kind is DecisionKind.CHECKPOINT else decision.checkpoint_to
        if done_to is not None and done_to > item.start:
            self._metrics.records_delivered.inc(done_to - item.start)
            open_window.last = records[done_to - 1]
        open_window.state = state
        open_window.invoked = True
        if not state.over_limit:
            return True
        log.info(
            "shard %s: window %s ends early: its state is %d bytes",
            self.shard_id,
            open_window.window,
            state.size_bytes,
        )
        open_window.terminated_early = True
        if not await self._close_window():
            return False
        self._open = _OpenWindow(open_window.window)  # the rest of the window starts from {}
        return True

    async def _retry_later(self, outcome: InvokeOutcome, decision: Decision, failure: str) -> bool:
        """Waits out a retry's backoff; False when the shard stops first."""
        retry = decision.next_items[0]
        self.last_error = failure
        self.last_processing_result = processing_result(outcome)
        log_retry(self.shard_id, outcome, failure, retry.attempts, decision.delay_seconds)
        self._metrics.retries.inc()
        # Shutting down or lost: the window is re-read from the last checkpoint.
        return self.state is ShardState.PROCESSING and not await self._halted_within(decision.delay_seconds)

    def _lost(self) -> bool:
        """Whether ownership went while an invocation was in flight (its result is dropped)."""
        if self.state is ShardState.LEASE_LOST:
            return True
        if not self._source.owned:
            self.lease_lost()  # the source knows first: stop now rather than invoke again
            return True
        return False

    # -- closing a window ----------------------------------------------------------------------

    def _event_fields(self, open_window: _OpenWindow[R], final: bool = False) -> WindowEventFields:
        return WindowEventFields(
            window=open_window.window,
            state=open_window.state,
            shard_id=self.shard_id,
            stream_arn=self._stream_arn,
            final=final,
            terminated_early=final and open_window.terminated_early,
        )

    async def _close_window(self) -> bool:
        """Makes the open window's final invocation, then checkpoints its records. False when
        the shard was lost or halted first (nothing is checkpointed then)."""
        open_window = self._open
        assert open_window is not None
        if open_window.invoked and not await self._invoke_final(open_window):
            return False
        if open_window.last is not None and not await self._checkpoint(open_window.last):
            return False
        self._open = None
        return True

    async def _invoke_final(self, open_window: _OpenWindow[R]) -> bool:
        """Invokes the function with no records and the window's last state until it succeeds or
        the policy gives up (True either way); False when the shard stops first. Its age, for
        MaximumRecordAgeInSeconds, counts from the window's end: it is due no earlier, and the
        window's records may be far older (a window is as long as 15 minutes)."""
        payload = window_event(NO_RECORDS_EVENT, self._event_fields(open_window, final=True))
        if len(payload) > INVOKE_PAYLOAD_LIMIT_BYTES:
            self._final_given_up(open_window, "its event passes the invoke payload limit")
            return True
        item = WorkItem(0, 0)
        while True:
            if self.state is not ShardState.PROCESSING:
                return False
            self.attempts = item.attempts
            outcome = await self._invoker.invoke(payload)
            if self._lost():
                return False
            if outcome.kind is OutcomeKind.SUCCESS:
                self.attempts = Attempts()
                self.last_error = None
                self.last_processing_result = "OK"
                return True
            decision = self._policy.decide(
                item, outcome, self._wall_clock(), float(open_window.window.end), SUCCEEDED, self._rand
            )
            if decision.kind is DecisionKind.DISCARD:
                self.attempts = Attempts()
                self._final_given_up(open_window, f"{decision.condition}: {outcome.describe()}")
                return True
            assert decision.kind is DecisionKind.RETRY, decision
            item = decision.next_items[0]
            if not await self._retry_later(outcome, decision, outcome.describe()):
                return False

    def _final_given_up(self, open_window: _OpenWindow[R], why: str) -> None:
        self.windows_given_up += 1
        log.error(
            "shard %s: final invocation of window %s given up (%s); the window is checkpointed without it",
            self.shard_id,
            open_window.window,
            why,
        )

    async def _checkpoint(self, record: R) -> bool:
        """Checkpoints through `record`; False (and the shard is lost) when refused."""
        if await self._source.checkpoint_after(record):
            return True
        self.lease_lost()
        return False


def _failure_text(outcome: InvokeOutcome, response: BatchResponse) -> str:
    if response.reason:
        return response.reason
    if response.verdict is Verdict.FAILED_FROM:
        return "the function reported batch item failures"
    return outcome.describe()
