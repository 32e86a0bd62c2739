"""One lane of a shard: the batch loop, with one batch in flight.

    next batch -> filter -> invoke -> failure policy (esm.shard.failures) -> completed | retry |
    bisect | give up to the failure sink -> report completion to the shard -> next batch

A lane takes its records from its `RecordBuffer` (the shard fills it) through a `Framing`: the
plain one (esm.shard.framing: each batch stands alone and is checkpointed as soon as it completes), or
esm.shard.windows' (tumbling windows: batches of one window carry its state, and its records
are checkpointed after the window's final invocation). Whatever the framing, a batch's records
are worked through by `work_through`, the one place the policy's decisions are carried out:

- a batch is worked on as `WorkItem`s (index ranges); bisecting replaces an item by its halves,
  a partial batch response by its remainder;
- records are given up (too old, out of retries, too large) to the failure sink, which is
  retried while it cannot write: a record is never dropped without being written somewhere
  (unless no destination is configured, as in Lambda);
- what completed is reported to the shard (`ShardProgress`), whose checkpoint is fenced by
  ownership: a refused checkpoint means the shard was lost.

Ownership: a lane runs while its shard is PROCESSING (esm.shard.state). When the shard is lost,
an invocation in flight is allowed to finish, so the function's concurrency limit stays true, but
its result is dropped and nothing more is checkpointed. On shutdown the batch in flight is
finished and checkpointed, buffered records are left for the next owner, and a batch waiting to
be retried is abandoned (it is re-read from the last checkpoint).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from esm.dispatch.outcomes import InvokeOutcome
from esm.shard.batch_response import SUCCEEDED, BatchResponse, Verdict
from esm.shard.batching import INVOKE_PAYLOAD_LIMIT_BYTES, BatchLimits, RecordBuffer
from esm.shard.contracts import Invoker, RecordFormat
from esm.shard.failures import Attempts, Decision, DecisionKind, FailurePolicy, WorkItem
from esm.shard.framing import Framing, Job, PlainFraming
from esm.shard.metrics import ShardMetrics
from esm.shard.reporting import describe_failure, log_retry, processing_result
from esm.shard.sink import DroppingSink, FailureSink, FailureSinkError
from esm.shard.state import ShardLife
from esm.shard.waits import REAL_WAITS, Waits

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from esm.tracing.batch import BatchTrace, BatchTracing

log = logging.getLogger(__name__)

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


@dataclass(frozen=True)
class LaneServices(Generic[R]):
    """What every lane of a mapping shares."""

    format: RecordFormat[R]
    invoker: Invoker
    policy: FailurePolicy
    metrics: ShardMetrics
    limits: BatchLimits
    report_batch_item_failures: bool = False
    waits: Waits = REAL_WAITS
    wall_clock: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random
    # Only when `Tracing` is configured: without it no span is built.
    tracing: BatchTracing | None = None


class LaneHost(Protocol[R_contra]):
    """The shard, as its lanes see it."""

    @property
    def life(self) -> ShardLife: ...

    @property
    def owned(self) -> bool:
        """Whether the source still gives this process the shard (a Kafka assignment is active)."""
        ...

    def lease_lost(self) -> None: ...

    async def completed_through(self, lane: int, record: R_contra) -> bool:
        """The lane completed everything it was given up to `record`; False when the shard is lost."""
        ...

    def taken(self, size_bytes: int) -> None:
        """Buffered bytes left the buffer (flow control)."""
        ...


class Lane(Generic[R]):
    def __init__(
        self,
        host: LaneHost[R],
        index: int,
        name: str,
        services: LaneServices[R],
        sink: FailureSink[R] | None = None,
        framing: Callable[[Lane[R]], Framing[R]] | None = None,
    ) -> None:
        self.index = index
        self.name = name
        self.host = host
        self.services = services
        self.buffer: RecordBuffer[R] = RecordBuffer(time.monotonic)
        self._sink: FailureSink[R] = sink or DroppingSink()
        self.framing: Framing[R] = framing(self) if framing is not None else PlainFraming(self)
        # For `esm status`: the batch being worked on, and Lambda's LastProcessingResult.
        self.current: list[R] | None = None
        self.attempts = Attempts()
        self.last_error: str | None = None
        self.last_processing_result = "No records processed"
        self.reached_end = False

    @property
    def format(self) -> RecordFormat[R]:
        return self.services.format

    @property
    def limits(self) -> BatchLimits:
        return self.services.limits

    @property
    def policy(self) -> FailurePolicy:
        return self.services.policy

    @property
    def metrics(self) -> ShardMetrics:
        return self.services.metrics

    async def run(self) -> None:
        """Processes the lane's records while its shard is PROCESSING."""
        life = self.host.life
        try:
            while life.processing:
                records = await self.framing.next_batch()
                if records is None:
                    break
                if records:
                    await self._process(records)
            if life.processing and self.framing.drained:
                self.reached_end = True
        finally:
            self.current = None

    def drop_buffered(self) -> int:
        return self.framing.drop()

    def reconfigure(self, services: LaneServices[R], sink: FailureSink[R] | None) -> None:
        """New settings (a mapping updated through the control API): from the next batch on; the
        batch in flight finishes under the settings it started with."""
        self.services = services
        self._sink = sink or DroppingSink()

    async def checkpoint_through(self, record: R) -> bool:
        """Reports the lane complete through `record`; False (and the shard lost) when refused."""
        if await self.host.completed_through(self.index, record):
            return True
        self.host.lease_lost()
        return False

    async def _process(self, records: list[R]) -> bool:
        selected = self.format.select(records)
        if len(selected) < len(records):
            self.metrics.records_filtered.inc(len(records) - len(selected))
        if selected:
            self.metrics.batch_size.observe(len(selected))
            self.current = selected
            try:
                if not await self.work_through(self.framing.job(selected)):
                    return False  # lost or stopped: nothing more is checkpointed
            finally:
                self.current = None
        if not selected or selected[-1] is not records[-1]:
            return await self.framing.passed(records[-1])
        return True

    def work_through(self, job: Job[R]) -> Coroutine[Any, Any, bool]:
        """Works through a job until each of its records completed or was given up on: True.
        False when the shard was lost or stops first (the next owner reads the rest again).
        Without tracing this is the loop's own coroutine (no extra frame on the hot path)."""
        tracing = self.services.tracing
        if tracing is None:
            return self._work_through(job, None)
        return self._traced_work_through(job, tracing)

    async def _traced_work_through(self, job: Job[R], tracing: BatchTracing) -> bool:
        records = job.records
        describe = self.services.format.describe_position
        trace = tracing.start_batch(
            self.host.life.name,
            self.name,
            describe(records[0]) if records else "",
            describe(records[-1]) if records else "",
            len(records),
        )
        done = False
        try:
            done = await self._work_through(job, trace)
        finally:
            trace.end(done)
        return done

    async def _work_through(self, job: Job[R], trace: BatchTrace | None) -> bool:
        services, sink = self.services, self._sink  # a reconfiguration applies from the next batch on
        policy, metrics, clock = services.policy, services.metrics, services.wall_clock
        records = job.records
        unreadable = services.format.unreadable_positions(records)
        items: deque[WorkItem] = deque(policy.work_items(len(records), unreadable))
        while items:
            if not self.host.life.processing:
                return False
            item = items[0]
            self.attempts = item.attempts
            oldest = job.oldest(item)
            aged = job.ages_before_invoke or item.unreadable  # an unreadable record is never invoked
            decision = policy.before_invoke(item, oldest, clock()) if aged else None
            chunk = records[item.start : item.end]
            payload = job.payload(chunk) if decision is None else b""
            if decision is None and len(payload) > INVOKE_PAYLOAD_LIMIT_BYTES:
                decision = policy.oversize(item)
            outcome: InvokeOutcome | None = None
            response = SUCCEEDED
            if decision is None:
                if item.size:
                    metrics.records_invoked.inc(item.size)
                    metrics.iterator_age.set(max(0.0, clock() - oldest))
                if trace is None:
                    outcome = await services.invoker.invoke(payload)
                else:
                    attempt = trace.attempt(_item_attributes(item, chunk, services.format))
                    outcome = await services.invoker.invoke(payload, attempt)
                if self._lost():
                    metrics.records_abandoned.inc(len(records) - item.start)
                    return False
                response = job.read(outcome, chunk)
                if outcome.kind.function_ran or response is not SUCCEEDED:
                    metrics.records_failed_invoke.inc(item.size)
                decision = policy.decide(item, outcome, clock(), oldest, response, services.rand)
                done_to = item.end if decision.kind is DecisionKind.CHECKPOINT else decision.checkpoint_to
                done_to = item.start if done_to is None else done_to
                if trace is None or done_to == item.start:  # the hot path; a span only when it moves
                    if not await job.completed(item.start, done_to):
                        return False
                else:
                    with trace.span("checkpoint", {"esm.records_completed": done_to - item.start}):
                        if not await job.completed(item.start, done_to):
                            return False
            if decision.kind is DecisionKind.CHECKPOINT:
                self.last_error = None
                self.last_processing_result = "OK"
                items.popleft()
            elif decision.kind is DecisionKind.SPLIT:
                metrics.bisects.inc()
                if trace is not None:
                    trace.event("bisect", _bisect_attributes(item, decision))
                items.popleft()
                items.extendleft(reversed(decision.next_items))
            elif decision.kind is DecisionKind.DISCARD:
                given_up = records[decision.discard_from : item.end]
                if given_up and not await self._give_up(given_up, decision, outcome, services, sink, trace):
                    return False
                why = decision.condition if outcome is None else f"{decision.condition}: {outcome.describe()}"
                with _span(trace, "checkpoint", {"esm.records_given_up": len(given_up)}):
                    if not await job.given_up(decision.discard_from, item.end, why):
                        return False
                items.popleft()
            else:
                assert outcome is not None
                items[0] = decision.next_items[0]
                with _span(trace, "retry backoff", _retry_attributes(decision)):
                    if not await self._retry_later(outcome, response, chunk, decision, services):
                        return False
        self.attempts = Attempts()
        return True

    def _lost(self) -> bool:
        """Whether ownership went while an invocation was in flight (its result is dropped)."""
        if self.host.life.lost:
            return True
        if not self.host.owned:
            self.host.lease_lost()  # the source knew first: stop now rather than invoke again
            return True
        return False

    async def _retry_later(
        self,
        outcome: InvokeOutcome,
        response: BatchResponse,
        chunk: Sequence[R],
        decision: Decision,
        services: LaneServices[R],
    ) -> bool:
        """Records why the attempt failed and waits out the backoff; False when the shard stops first."""
        first_failed = None
        if response.verdict is Verdict.FAILED_FROM and chunk:
            first_failed = services.format.describe_position(chunk[response.first_failed])
        failure = describe_failure(outcome, response, len(chunk), first_failed)
        retry = decision.next_items[0]
        self.last_error = failure
        self.last_processing_result = processing_result(outcome)
        log_retry(self.name, outcome, failure, retry.attempts, decision.delay_seconds)
        services.metrics.retries.inc()
        life = self.host.life
        # Shutting down or lost: the batch is re-read from the last checkpoint.
        return life.processing and not await services.waits.halted_within(life.halt, decision.delay_seconds)

    async def _give_up(
        self,
        records: Sequence[R],
        decision: Decision,
        outcome: InvokeOutcome | None,
        services: LaneServices[R],
        sink: FailureSink[R],
        trace: BatchTrace | None,
    ) -> bool:
        """Hands records to the failure sink, retrying while it cannot take them: a record is never
        dropped without being written somewhere. False when the shard halts first."""
        failures = 0
        while True:
            try:
                with _span(trace, "destination write", {"esm.batch.record_count": len(records)}) as span:
                    written = await sink.send(records, decision, outcome)
                    if span is not None:
                        span.set_attribute("esm.written", written)
            except FailureSinkError as err:
                failures += 1
                services.metrics.destination_failures.inc()
                delay = services.policy.transient_backoff.delay(failures, services.rand)
                log.warning(
                    "shard %s: on-failure destination failed (%s); retrying in %.2fs", self.name, err, delay
                )
                if await services.waits.halted_within(self.host.life.halt, delay):
                    return False
                continue
            counter = (
                services.metrics.records_to_destination
                if written
                else services.metrics.records_dropped_no_destination
            )
            counter.inc(len(records))
            return True


ATTEMPT_ATTRIBUTE = "esm.attempt"
_NO_SPAN: AbstractContextManager[None] = nullcontext()


def _span(
    trace: BatchTrace | None, name: str, attributes: Mapping[str, str | int | float]
) -> AbstractContextManager[Span | None]:
    """A child span of the batch around a step; without tracing, nothing."""
    return _NO_SPAN if trace is None else trace.span(name, attributes)


def _retry_attributes(decision: Decision) -> dict[str, str | int | float]:
    return {
        ATTEMPT_ATTRIBUTE: decision.next_items[0].attempts.retries,
        "esm.delay_seconds": decision.delay_seconds,
    }


def _item_attributes(
    item: WorkItem, chunk: Sequence[R], record_format: RecordFormat[R]
) -> dict[str, str | int]:
    """What an invocation span says about the records it carries."""
    attributes: dict[str, str | int] = {
        ATTEMPT_ATTRIBUTE: item.attempts.retries,
        "esm.batch.record_count": len(chunk),
    }
    if chunk:
        attributes["esm.batch.first_position"] = record_format.describe_position(chunk[0])
        attributes["esm.batch.last_position"] = record_format.describe_position(chunk[-1])
    return attributes


def _bisect_attributes(item: WorkItem, decision: Decision) -> dict[str, str | int]:
    halves = ", ".join(f"[{half.start}, {half.end})" for half in decision.next_items)
    return {"esm.bisect.item": f"[{item.start}, {item.end})", "esm.bisect.halves": halves}
