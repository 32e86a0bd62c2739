"""The failure policy: pure functions of (work item, outcome, time) -> what the shard does next.

No I/O and no clock reads: the shard consumer carries out each `Decision`. A batch is worked on
as `WorkItem`s, index ranges into the invoked batch; bisecting replaces an item by its halves,
a partial batch response by its remainder. Lambda's rules:

- success: checkpoint past the item;
- a partial batch response (ReportBatchItemFailures) failing from record i: checkpoint before
  i and retry from i (the records before i are never re-driven); it counts as an attempt;
- a function error or timeout, or a whole-batch failure response: with
  BisectBatchOnFunctionError and more than one record, split into halves, first half first,
  without delay and without using up the retry quota (each half carries on the attempt count);
  otherwise retry the item, one attempt more, backing off exponentially (1 s doubling to a cap);
- MaximumRetryAttempts (-1 = forever): a failure with that many retries already made sends the
  item (the whole remaining batch) to the on-failure destination (RetryAttemptsExhausted) and
  moves past it; approximateInvokeCount counts every invocation that included the records;
- a throttle or an unreachable function: retry without counting an attempt, shorter backoff;
- MaximumRecordAgeInSeconds (-1 = forever): an item whose oldest record passed the age is sent
  to the destination (RecordAgeExceeded) before it is invoked again, whatever the failure;
- a record the reader could not decode (esm.events.unreadable) is an item of its own, sent to
  the destination without being invoked (RecordUnreadable, esm's own condition: Lambda has no
  such case); the records around it are worked on as usual.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, BatchResponse, Verdict

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
MAXIMUM_PAYLOAD_SIZE_EXCEEDED = "MaximumPayloadSizeExceeded"
RECORD_UNREADABLE = "RecordUnreadable"
UNHANDLED = "Unhandled"
FOREVER = -1


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter: delay(n) in [d/2, d], d = min(cap, initial * 2**n)."""

    initial_seconds: float
    cap_seconds: float

    def delay(self, failures: int, rand: Callable[[], float]) -> float:
        base = min(self.cap_seconds, self.initial_seconds * (2 ** min(failures, 32)))
        return float(base / 2 + rand() * base / 2)


@dataclass(frozen=True)
class Attempts:
    # Re-invocations after a failure: what MaximumRetryAttempts limits.
    retries: int = 0
    # Invocations that included these records and reached the function (approximateInvokeCount).
    invocations: int = 0
    # Throttles and unreachable workers in a row (they only set the backoff).
    transient_failures: int = 0


@dataclass(frozen=True)
class WorkItem:
    """Records [start, end) of the invoked batch, with what they have been through."""

    start: int
    end: int
    attempts: Attempts = Attempts()
    # One record the reader could not decode: never invoked.
    unreadable: bool = False

    @property
    def size(self) -> int:
        return self.end - self.start


class DecisionKind(enum.Enum):
    CHECKPOINT = "checkpoint"  # the item succeeded: checkpoint through its end
    RETRY = "retry"  # invoke next_items[0] after delay_seconds (checkpoint_to first, if set)
    SPLIT = "split"  # work on next_items in order, at once
    DISCARD = "discard"  # records [discard_from, end) to the destination, then checkpoint past them


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    delay_seconds: float = 0.0
    next_items: tuple[WorkItem, ...] = ()
    # Checkpoint before this index first (a partial batch response's successful head).
    checkpoint_to: int | None = None
    # DISCARD: where the discarded records start, why, and what the failure record says.
    discard_from: int = 0
    condition: str = ""
    function_error: str | None = None
    invoke_count: int = 0


@dataclass(frozen=True)
class FailurePolicy:
    maximum_retry_attempts: int = FOREVER
    maximum_record_age_seconds: int = FOREVER
    bisect_on_function_error: bool = False
    function_error_backoff: Backoff = Backoff(initial_seconds=1.0, cap_seconds=30.0)
    transient_backoff: Backoff = Backoff(initial_seconds=0.05, cap_seconds=2.0)

    def expired(self, oldest_record_time: float, now: float) -> bool:
        """Whether the oldest record (its time in the stream, epoch seconds) passed the age limit."""
        return (
            self.maximum_record_age_seconds != FOREVER
            and now - oldest_record_time > self.maximum_record_age_seconds
        )

    def work_items(self, size: int, unreadable: Sequence[int]) -> list[WorkItem]:
        """The first items of a batch of `size` records: all of them (one item, empty for a
        window's final invocation), except that each unreadable record (by index, ascending) is
        an item of its own."""
        items: list[WorkItem] = []
        start = 0
        for index in unreadable:
            if index > start:
                items.append(WorkItem(start, index))
            items.append(WorkItem(index, index + 1, unreadable=True))
            start = index + 1
        if start < size or not items:
            items.append(WorkItem(start, size))
        return items

    def before_invoke(self, item: WorkItem, oldest_record_time: float, now: float) -> Decision | None:
        """A DISCARD when the item must not be invoked (unreadable, too old); None to go ahead."""
        if item.unreadable:
            return _discard(item, item.start, RECORD_UNREADABLE, None, 0)
        if self.expired(oldest_record_time, now):
            return _discard(item, item.start, RECORD_AGE_EXCEEDED, None, item.attempts.invocations)
        return None

    def oversize(self, item: WorkItem) -> Decision:
        """The item's event passes the invoke payload limit: a single record (or an event with
        none, such as a window's final invocation) goes to the destination
        (MaximumPayloadSizeExceeded) and the shard moves on; more are split."""
        if item.size <= 1:
            return _discard(item, item.start, MAXIMUM_PAYLOAD_SIZE_EXCEEDED, None, item.attempts.invocations)
        middle = item.start + item.size // 2
        return Decision(
            DecisionKind.SPLIT,
            0.0,
            (WorkItem(item.start, middle, item.attempts), WorkItem(middle, item.end, item.attempts)),
        )

    def decide(
        self,
        item: WorkItem,
        outcome: InvokeOutcome,
        now: float,
        oldest_record_time: float,
        response: BatchResponse = SUCCEEDED,
        rand: Callable[[], float] = random.random,
    ) -> Decision:
        """What follows `outcome` of invoking `item`. `response` is the parsed partial batch
        response (SUCCEEDED when ReportBatchItemFailures is off: the body is then ignored)."""
        attempts = item.attempts
        if not outcome.kind.function_ran and outcome.kind is not OutcomeKind.SUCCESS:
            if self.expired(oldest_record_time, now):
                return _discard(item, item.start, RECORD_AGE_EXCEEDED, None, attempts.invocations)
            delay = self.transient_backoff.delay(attempts.transient_failures, rand)
            retry = replace(
                item, attempts=replace(attempts, transient_failures=attempts.transient_failures + 1)
            )
            return Decision(DecisionKind.RETRY, delay, (retry,))

        attempts = replace(attempts, invocations=attempts.invocations + 1, transient_failures=0)
        if outcome.kind is OutcomeKind.SUCCESS:
            if response.verdict is Verdict.SUCCEEDED:
                return Decision(DecisionKind.CHECKPOINT)
            if response.verdict is Verdict.FAILED_FROM:
                # The head succeeded; the rest is retried as it is (never bisected), one attempt more.
                first = item.start + response.first_failed
                head_done = first if first > item.start else None
                return self._after_failure(
                    WorkItem(first, item.end, attempts), now, oldest_record_time, None, rand, head_done
                )
            # A response that fails the whole batch: like a function error, but functionError is null.
        function_error = UNHANDLED if outcome.kind.function_ran else None
        failed = WorkItem(item.start, item.end, attempts)
        if self.bisect_on_function_error and failed.size > 1:
            middle = failed.start + failed.size // 2
            halves = (WorkItem(failed.start, middle, attempts), WorkItem(middle, failed.end, attempts))
            return Decision(DecisionKind.SPLIT, 0.0, halves)
        return self._after_failure(failed, now, oldest_record_time, function_error, rand, None)

    def _after_failure(
        self,
        item: WorkItem,
        now: float,
        oldest_record_time: float,
        function_error: str | None,
        rand: Callable[[], float],
        checkpoint_to: int | None,
    ) -> Decision:
        attempts = item.attempts
        if self.maximum_retry_attempts != FOREVER and attempts.retries >= self.maximum_retry_attempts:
            return _discard(
                item,
                item.start,
                RETRY_ATTEMPTS_EXHAUSTED,
                function_error,
                attempts.invocations,
                checkpoint_to,
            )
        if self.expired(oldest_record_time, now):
            return _discard(item, item.start, RECORD_AGE_EXCEEDED, None, attempts.invocations, checkpoint_to)
        delay = self.function_error_backoff.delay(attempts.retries, rand)
        retry = replace(item, attempts=replace(attempts, retries=attempts.retries + 1))
        return Decision(DecisionKind.RETRY, delay, (retry,), checkpoint_to=checkpoint_to)


def _discard(
    item: WorkItem,
    start: int,
    condition: str,
    function_error: str | None,
    invocations: int,
    checkpoint_to: int | None = None,
) -> Decision:
    return Decision(
        DecisionKind.DISCARD,
        checkpoint_to=checkpoint_to,
        discard_from=start,
        condition=condition,
        function_error=function_error,
        invoke_count=invocations,
        next_items=(item,),
    )
