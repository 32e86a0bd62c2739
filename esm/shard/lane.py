"""Processes one shard's records in order: batch -> invoke -> failure policy -> fenced checkpoint.

One batch in flight at a time. The source fills the shard's `RecordBuffer` (prefetching while a
batch is in flight); this loop cuts batches, drops what FilterCriteria rejects (checkpointing
past it), invokes the function, and carries out the policy's decisions over the batch's work
items (esm.shard.failures): checkpoint, retry after a backoff, bisect, or give records up to the
failure sink (the on-failure destination, retried until written). Its lifecycle follows
`esm.shard.state` (diagram there).

Ownership: when the shard is lost (Kafka revocation, lease stolen) the loop stops taking batches;
an invocation already in flight is allowed to finish, so the function's concurrency limit stays
true, but its result is dropped and nothing is checkpointed. On shutdown the batch in flight is
finished and checkpointed, buffered records are left for the next owner, and a batch waiting to
be retried is abandoned (it is re-read from the last checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, read_batch_response
from esm.shard.batching import INVOKE_PAYLOAD_LIMIT_BYTES, BatchLimits, RecordBuffer
from esm.shard.failures import Attempts, Decision, DecisionKind, FailurePolicy, WorkItem
from esm.shard.reporting import FailureSink, FailureSinkError, halted_within, log_retry, processing_result
from esm.shard.state import ShardEvent, ShardState, next_state

if TYPE_CHECKING:
    from esm.metrics import Metrics

log = logging.getLogger(__name__)

R = TypeVar("R")


class Invoker(Protocol):
    async def invoke(self, payload: bytes) -> InvokeOutcome: ...


class ShardSource(Protocol[R]):
    """What a source supplies to process its records."""

    def build_event(self, records: Sequence[R]) -> bytes: ...
    def record_time(self, record: R) -> float:
        """When the record entered the stream (epoch seconds): iterator age and record age."""
        ...

    def select(self, records: list[R]) -> list[R]:
        """The records FilterCriteria lets through (the others are checkpointed, not invoked)."""
        ...

    def index_of(self, records: Sequence[R], identifier: Any) -> int | None:
        """Where a partial batch response's itemIdentifier is in `records`, None if absent."""
        ...

    async def checkpoint_after(self, record: R) -> bool:
        """Marks everything up to `record` done; False when ownership was lost."""
        ...

    def taken(self, size_bytes: int) -> None:
        """Buffered bytes left the buffer (flow control)."""
        ...

    @property
    def owned(self) -> bool: ...


__all__ = [
    "DroppingSink",
    "FailureSink",
    "FailureSinkError",
    "ShardConsumer",
    "ShardConsumerBase",
    "ShardMetrics",
    "ShardSource",
]


class DroppingSink:
    """No destination configured: as in Lambda, records given up on are dropped (and counted)."""

    async def send(
        self, records: Sequence[Any], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        log.warning(
            "%d records dropped (%s after %d invocations; no on-failure destination)",
            len(records),
            decision.condition,
            decision.invoke_count,
        )
        return False


class _Inc(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Observe(Protocol):
    def observe(self, amount: float) -> None: ...


class _Set(Protocol):
    def set(self, value: float) -> None: ...


@dataclass(frozen=True)
class ShardMetrics:
    """Pre-labelled metric children for one mapping (shared by its shards)."""

    records_invoked: _Inc
    records_delivered: _Inc
    # Buffered or in-flight records left for the next owner (ownership lost).
    records_abandoned: _Inc
    batch_size: _Observe
    retries: _Inc
    iterator_age: _Set
    bisects: _Inc
    records_to_destination: _Inc
    records_dropped_no_destination: _Inc
    records_filtered: _Inc
    destination_failures: _Inc
    records_failed_invoke: _Inc

    @classmethod
    def of_mapping(cls, metrics: Metrics, mapping_id: str) -> ShardMetrics:
        return cls(
            records_invoked=metrics.records_invoked.labels(mapping_id),
            records_delivered=metrics.records_delivered.labels(mapping_id),
            records_abandoned=metrics.records_dropped_on_revoke.labels(mapping_id),
            batch_size=metrics.batch_size.labels(mapping_id),
            retries=metrics.retries.labels(mapping_id),
            iterator_age=metrics.iterator_age.labels(mapping_id),
            bisects=metrics.bisects.labels(mapping_id),
            records_to_destination=metrics.records_to_destination.labels(mapping_id),
            records_dropped_no_destination=metrics.records_dropped.labels(mapping_id),
            records_failed_invoke=metrics.records_failed_invoke.labels(mapping_id),
            records_filtered=metrics.records_filtered.labels(mapping_id),
            destination_failures=metrics.destination_failures.labels(mapping_id),
        )


class ShardConsumerBase(Generic[R]):
    """What both shard consumers (this one and esm.shard.windows's) share: their
    collaborators, the `esm.shard.state` life with its ownership contract, the status fields, and
    handing records given up on to the failure sink."""

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
    ) -> None:
        self.shard_id = shard_id
        self.buffer = buffer
        self._limits = limits
        self._source = source
        self._invoker = invoker
        self._policy = policy
        self._metrics = metrics
        self._sink: FailureSink[R] = failure_sink or DroppingSink()
        self._report_item_failures = report_batch_item_failures
        self._wall_clock = wall_clock
        self._rand = rand
        self.state = initial_state
        # Set when the shard must stop taking batches (lost or shutting down).
        self._halt = asyncio.Event()
        self.last_error: str | None = None
        self.attempts = Attempts()
        # For `esm status`: the batch being worked on, and Lambda's LastProcessingResult.
        self.current: list[R] | None = None
        self.last_processing_result = "No records processed"
        self._reached_end = False

    def _transition(self, event: ShardEvent) -> None:
        before = self.state
        self.state = next_state(self.state, event)
        if before is not self.state:
            log.debug("shard %s: %s -> %s", self.shard_id, before.value, self.state.value)

    @property
    def reached_end(self) -> bool:
        """The shard's buffer was closed and every record in it was processed (not lost/stopped)."""
        return self._reached_end

    def lease_lost(self) -> None:
        self._transition(ShardEvent.LEASE_LOST)
        self._halt.set()
        dropped = self._drop_buffered()
        if dropped:
            self._metrics.records_abandoned.inc(dropped)

    def _drop_buffered(self) -> int:
        """Drops the records waiting to be processed (the next owner reads them); how many."""
        dropped = len(self.buffer)
        self.buffer.clear()
        return dropped

    def request_shutdown(self) -> None:
        if self.state in (ShardState.SHUT_DOWN, ShardState.LEASE_LOST):
            return
        self._transition(ShardEvent.SHUTDOWN_REQUESTED)
        self._halt.set()

    async def run(self) -> None:
        """Processes the shard's records until it ends, is lost or shut down."""
        raise NotImplementedError

    def _end_reached(self) -> None:
        """Everything the shard will ever hold was processed: the owner may end the shard."""
        self._transition(ShardEvent.END_REACHED)
        self._reached_end = True

    def _settle(self) -> None:
        """The end of `run()`, however it ends: SHUT_DOWN."""
        if self.state in (ShardState.INITIALIZING, ShardState.PROCESSING):
            # Cancelled (its owner was cancelled past the shutdown grace): a shutdown all the same.
            self._transition(ShardEvent.SHUTDOWN_REQUESTED)
        if self.state is not ShardState.SHUT_DOWN:
            self._transition(ShardEvent.DRAINED)

    async def _halted_within(self, seconds: float) -> bool:
        return await halted_within(self._halt, seconds)

    async def _give_up(self, records: list[R], decision: Decision, outcome: InvokeOutcome | None) -> bool:
        """Hands records to the failure sink, retrying while it cannot take them: a record is never
        dropped without being written somewhere. False when the shard halts first."""
        failures = 0
        while True:
            try:
                written = await self._sink.send(records, decision, outcome)
            except FailureSinkError as err:
                failures += 1
                self._metrics.destination_failures.inc()
                delay = self._policy.transient_backoff.delay(failures, self._rand)
                log.warning(
                    "shard %s: on-failure destination failed (%s); retrying in %.2fs",
                    self.shard_id,
                    err,
                    delay,
                )
                if await self._halted_within(delay):
                    return False
                continue
            metrics = self._metrics
            counter = metrics.records_to_destination if written else metrics.records_dropped_no_destination
            counter.inc(len(records))
            return True


class ShardConsumer(ShardConsumerBase[R]):
    async def run(self) -> None:
        if self.state is ShardState.INITIALIZING:
            self._transition(ShardEvent.INITIALIZED)
        try:
            while self.state is ShardState.PROCESSING:
                if not await self.buffer.wait_ready(self._limits, self._halt):
                    break
                records, size = self.buffer.take(self._limits)
                self._source.taken(size)
                selected = self._source.select(records)
                if len(selected) < len(records):
                    self._metrics.records_filtered.inc(len(records) - len(selected))
                if selected and not await self._process(selected):
                    continue  # lost or halted: nothing more is checkpointed
                if (not selected or selected[-1] is not records[-1]) and not await self._checkpoint_filtered(
                    records
                ):
                    continue
            if self.state is ShardState.PROCESSING and self.buffer.drained:
                self._end_reached()
        finally:
            self._settle()

    async def _checkpoint_filtered(self, records: list[R]) -> bool:
        """Moves the checkpoint past a batch's trailing records that the filter dropped."""
        if await self._source.checkpoint_after(records[-1]):
            return True
        self.lease_lost()
        return False

    async def _process(self, records: list[R]) -> bool:
        """Works through one batch until every record is checkpointed or given up on (sent to
        the failure sink): True. False when the shard is lost or shut down first."""
        self._metrics.batch_size.observe(len(records))
        self.current = records
        try:
            return await self._work_through(records)
        finally:
            self.current = None

    async def _work_through(self, records: list[R]) -> bool:
        items: deque[WorkItem] = deque([WorkItem(0, len(records))])
        while items:
            item = items[0]
            self.attempts = item.attempts
            oldest = self._source.record_time(records[item.start])
            decision = self._policy.before_invoke(item, oldest, self._wall_clock())
            outcome: InvokeOutcome | None = None
            chunk = records[item.start : item.end]
            payload = self._source.build_event(chunk) if decision is None else b""
            if decision is None and len(payload) > INVOKE_PAYLOAD_LIMIT_BYTES:
                decision = self._policy.oversize(item)
            if decision is None:
                self._metrics.records_invoked.inc(item.size)
                self._metrics.iterator_age.set(max(0.0, self._wall_clock() - oldest))
                outcome = await self._invoker.invoke(payload)
                if not self._source.owned or self.state is ShardState.LEASE_LOST:
                    self._metrics.records_abandoned.inc(len(records) - item.start)
                    return False
                response = SUCCEEDED
                if self._report_item_failures and outcome.kind is OutcomeKind.SUCCESS:
                    response = read_batch_response(outcome.response, partial(self._source.index_of, chunk))
                if outcome.kind.function_ran or response is not SUCCEEDED:
                    self._metrics.records_failed_invoke.inc(item.size)
                decision = self._policy.decide(
                    item, outcome, self._wall_clock(), oldest, response, self._rand
                )
            if decision.checkpoint_to is not None and not await self._checkpoint(
                records, item.start, decision.checkpoint_to
            ):
                return False
            if decision.kind is DecisionKind.CHECKPOINT:
                self.last_error = None
                self.last_processing_result = "OK"
                if not await self._checkpoint(records, item.start, item.end):
                    return False
                items.popleft()
            elif decision.kind is DecisionKind.SPLIT:
                self._metrics.bisects.inc()
                items.popleft()
                items.extendleft(reversed(decision.next_items))
            elif decision.kind is DecisionKind.DISCARD:
                given_up = records[decision.discard_from : item.end]
                if not await self._give_up(given_up, decision, outcome):
                    return False
                if not await self._checkpoint(records, decision.discard_from, item.end):
                    return False
                items.popleft()
            else:
                assert outcome is not None
                items[0] = decision.next_items[0]
                self.last_error = outcome.describe()
                self.last_processing_result = processing_result(outcome)
                log_retry(
                    self.shard_id,
                    outcome,
                    outcome.describe(),
                    decision.next_items[0].attempts,
                    decision.delay_seconds,
                )
                self._metrics.retries.inc()
                if self.state is not ShardState.PROCESSING or await self._halted_within(
                    decision.delay_seconds
                ):
                    return False  # shutting down or lost: the batch is re-read from the last checkpoint
        self.attempts = Attempts()
        return True

    async def _checkpoint(self, records: list[R], start: int, end: int) -> bool:
        """Checkpoints through records[end - 1]; False (and the shard is lost) when refused."""
        if end <= start:
            return True
        if await self._source.checkpoint_after(records[end - 1]):
            self._metrics.records_delivered.inc(end - start)
            return True
        self._metrics.records_abandoned.inc(len(records) - start)
        self.lease_lost()
        return False
