"""The failure policy, table-driven: every decision is a pure function of its inputs."""

from __future__ import annotations

import math

import pytest

from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, BatchResponse, Verdict
from esm.shard.failures import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    Attempts,
    Backoff,
    Decision,
    DecisionKind,
    FailurePolicy,
    WorkItem,
)

NOW = 10_000.0
FRESH = NOW - 1.0  # the oldest record's time in the stream
ERROR = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", "bad record"))
TIMEOUT = InvokeOutcome(OutcomeKind.TIMEOUT, error=FunctionError("Sandbox.Timedout", "Task timed out"))
OK = InvokeOutcome.success(b"null")
THROTTLED = InvokeOutcome(OutcomeKind.THROTTLED, detail="busy")
DOWN = InvokeOutcome(OutcomeKind.UNREACHABLE, detail="worker down")
BACKOFFS = {
    "function_error_backoff": Backoff(initial_seconds=1.0, cap_seconds=30.0),
    "transient_backoff": Backoff(initial_seconds=0.05, cap_seconds=2.0),
}
DEFAULT = FailurePolicy(**BACKOFFS)  # type: ignore[arg-type]
MAX_3 = FailurePolicy(maximum_retry_attempts=3, **BACKOFFS)  # type: ignore[arg-type]
MAX_0 = FailurePolicy(maximum_retry_attempts=0, **BACKOFFS)  # type: ignore[arg-type]
BISECT = FailurePolicy(bisect_on_function_error=True, maximum_retry_attempts=2, **BACKOFFS)  # type: ignore[arg-type]
AGE_60 = FailurePolicy(maximum_record_age_seconds=60, **BACKOFFS)  # type: ignore[arg-type]


def item(
    start: int = 0, end: int = 10, retries: int = 0, invocations: int = 0, transient: int = 0
) -> WorkItem:
    return WorkItem(start, end, Attempts(retries, invocations, transient))


def partial(first_failed: int) -> BatchResponse:
    return BatchResponse(Verdict.FAILED_FROM, first_failed=first_failed)


WHOLE_BATCH_FAILED = BatchResponse(Verdict.FAILED, reason="itemIdentifier is empty")


# rand() = 1.0 makes each jittered delay its upper bound, so the rows show the schedule.
@pytest.mark.parametrize(
    ("policy", "work", "outcome", "response", "oldest", "expected"),
    [
        # success
        (DEFAULT, item(), OK, SUCCEEDED, FRESH, Decision(DecisionKind.CHECKPOINT)),
        # function errors retry forever by default, 1 s doubling to 30 s, one retry more each time
        (
            DEFAULT,
            item(),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 1.0, (item(retries=1, invocations=1),)),
        ),
        (
            DEFAULT,
            item(retries=1, invocations=2),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 2.0, (item(retries=2, invocations=3),)),
        ),
        (
            DEFAULT,
            item(retries=9, invocations=10),
            TIMEOUT,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 30.0, (item(retries=10, invocations=11),)),
        ),
        # transient failures: no attempt counted, short backoff; a later function error resets them
        (
            DEFAULT,
            item(),
            THROTTLED,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 0.05, (item(transient=1),)),
        ),
        (
            DEFAULT,
            item(retries=2, invocations=3, transient=1),
            DOWN,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 0.1, (item(retries=2, invocations=3, transient=2),)),
        ),
        (
            DEFAULT,
            item(transient=40),
            DOWN,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 2.0, (item(transient=41),)),
        ),
        (
            DEFAULT,
            item(transient=7),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 1.0, (item(retries=1, invocations=1),)),
        ),
        # MaximumRetryAttempts 3: the 4th invocation's failure gives up (approximateInvokeCount 4, as AWS)
        (
            MAX_3,
            item(retries=2, invocations=3),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 4.0, (item(retries=3, invocations=4),)),
        ),
        (
            MAX_3,
            item(retries=3, invocations=4),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(
                DecisionKind.DISCARD,
                next_items=(item(retries=3, invocations=5),),
                discard_from=0,
                condition=RETRY_ATTEMPTS_EXHAUSTED,
                function_error="Unhandled",
                invoke_count=5,
            ),
        ),
        (
            MAX_0,
            item(),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(
                DecisionKind.DISCARD,
                next_items=(item(invocations=1),),
                condition=RETRY_ATTEMPTS_EXHAUSTED,
                function_error="Unhandled",
                invoke_count=1,
            ),
        ),
        # throttles never exhaust retries
        (
            MAX_0,
            item(transient=3),
            THROTTLED,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.RETRY, 0.4, (item(transient=4),)),
        ),
        # partial batch response: checkpoint the head, retry the rest (counts an attempt)
        (
            DEFAULT,
            item(),
            OK,
            partial(4),
            FRESH,
            Decision(DecisionKind.RETRY, 1.0, (item(start=4, retries=1, invocations=1),), checkpoint_to=4),
        ),
        (
            DEFAULT,
            item(start=4),
            OK,
            partial(2),
            FRESH,
            Decision(DecisionKind.RETRY, 1.0, (item(start=6, retries=1, invocations=1),), checkpoint_to=6),
        ),
        (
            DEFAULT,
            item(),
            OK,
            partial(0),
            FRESH,
            Decision(DecisionKind.RETRY, 1.0, (item(retries=1, invocations=1),)),
        ),
        # ... and with retries exhausted the remainder goes to the destination; functionError null
        (
            MAX_0,
            item(),
            OK,
            partial(6),
            FRESH,
            Decision(
                DecisionKind.DISCARD,
                next_items=(item(start=6, invocations=1),),
                checkpoint_to=6,
                discard_from=6,
                condition=RETRY_ATTEMPTS_EXHAUSTED,
                function_error=None,
                invoke_count=1,
            ),
        ),
        # a response that fails the whole batch is a failure with functionError null
        (
            MAX_0,
            item(),
            OK,
            WHOLE_BATCH_FAILED,
            FRESH,
            Decision(
                DecisionKind.DISCARD,
                next_items=(item(invocations=1),),
                condition=RETRY_ATTEMPTS_EXHAUSTED,
                function_error=None,
                invoke_count=1,
            ),
        ),
        # bisect: halves at once, first half first, the retry count carried on, not used up
        (
            BISECT,
            item(retries=1, invocations=2),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.SPLIT, 0.0, (item(0, 5, 1, 3), item(5, 10, 1, 3))),
        ),
        (
            BISECT,
            item(5, 10),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(DecisionKind.SPLIT, 0.0, (item(5, 7, 0, 1), item(7, 10, 0, 1))),
        ),
        (
            BISECT,
            item(),
            OK,
            WHOLE_BATCH_FAILED,
            FRESH,
            Decision(DecisionKind.SPLIT, 0.0, (item(0, 5, 0, 1), item(5, 10, 0, 1))),
        ),
        # a single record is not split: it retries until the quota is used up
        (BISECT, item(3, 4), ERROR, SUCCEEDED, FRESH, Decision(DecisionKind.RETRY, 1.0, (item(3, 4, 1, 1),))),
        (
            BISECT,
            item(3, 4, 2, 5),
            ERROR,
            SUCCEEDED,
            FRESH,
            Decision(
                DecisionKind.DISCARD,
                next_items=(item(3, 4, 2, 6),),
                discard_from=3,
                condition=RETRY_ATTEMPTS_EXHAUSTED,
                function_error="Unhandled",
                invoke_count=6,
            ),
        ),
        # bisect with a partial response: only the remainder is retried, never split
        (
            BISECT,
            item(),
            OK,
            partial(7),
            FRESH,
            Decision(DecisionKind.RETRY, 1.0, (item(start=7, retries=1, invocations=1),), checkpoint_to=7),
        ),
        # record age: a failure past the age gives up at once (no responseContext: no functionError)
        (
            AGE_60,
            item(),
            ERROR,
            SUCCEEDED,
            NOW - 61,
            Decision(
                DecisionKind.DISCARD,
                next_items=(item(invocations=1),),
                condition=RECORD_AGE_EXCEEDED,
                function_error=None,
                invoke_count=1,
            ),
        ),
        (
            AGE_60,
            item(),
            DOWN,
            SUCCEEDED,
            NOW - 61,
            Decision(
                DecisionKind.DISCARD, next_items=(item(),), condition=RECORD_AGE_EXCEEDED, invoke_count=0
            ),
        ),
        (
            AGE_60,
            item(),
            ERROR,
            SUCCEEDED,
            NOW - 59,
            Decision(DecisionKind.RETRY, 1.0, (item(retries=1, invocations=1),)),
        ),
        # success is success, however old
        (AGE_60, item(), OK, SUCCEEDED, NOW - 600, Decision(DecisionKind.CHECKPOINT)),
    ],
)
def test_decide(
    policy: FailurePolicy,
    work: WorkItem,
    outcome: InvokeOutcome,
    response: BatchResponse,
    oldest: float,
    expected: Decision,
) -> None:
    assert policy.decide(work, outcome, NOW, oldest, response, rand=lambda: 1.0) == expected


@pytest.mark.parametrize(
    ("policy", "oldest", "expected_condition"),
    [(DEFAULT, NOW - 10**6, None), (AGE_60, NOW - 60, None), (AGE_60, NOW - 60.5, RECORD_AGE_EXCEEDED)],
)
def test_before_invoke_checks_record_age(
    policy: FailurePolicy, oldest: float, expected_condition: str | None
) -> None:
    decision = policy.before_invoke(item(retries=1, invocations=2), oldest, NOW)
    if expected_condition is None:
        assert decision is None
    else:
        assert decision is not None
        assert (decision.kind, decision.condition, decision.invoke_count) == (
            DecisionKind.DISCARD,
            expected_condition,
            2,
        )


def test_jitter_stays_within_half_to_full_delay() -> None:
    backoff = Backoff(1.0, 30.0)
    assert backoff.delay(3, lambda: 0.0) == 4.0
    assert backoff.delay(3, lambda: 1.0) == 8.0


def isolate(
    policy: FailurePolicy, size: int, bad: int
) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    """Drives the policy like the shard consumer over a batch with one bad record; returns the
    invocations made, the checkpointed ranges and the discarded ranges, in order."""
    items = [WorkItem(0, size)]
    invocations = 0
    checkpointed: list[tuple[int, int]] = []
    discarded: list[tuple[int, int]] = []
    while items:
        work = items[0]
        invocations += 1
        outcome = ERROR if work.start <= bad < work.end else OK
        decision = policy.decide(work, outcome, NOW, FRESH, SUCCEEDED, rand=lambda: 0.5)
        if decision.kind is DecisionKind.CHECKPOINT:
            checkpointed.append((work.start, work.end))
            items.pop(0)
        elif decision.kind is DecisionKind.SPLIT:
            items[0:1] = list(decision.next_items)
        elif decision.kind is DecisionKind.DISCARD:
            discarded.append((decision.discard_from, work.end))
            items.pop(0)
        else:
            items[0] = decision.next_items[0]
    return invocations, checkpointed, discarded


@pytest.mark.parametrize("bad", [0, 1, 499, 500, 731, 999])
def test_bisect_isolates_one_bad_record_in_a_thousand(bad: int) -> None:
    retries = 2
    policy = FailurePolicy(bisect_on_function_error=True, maximum_retry_attempts=retries)
    invocations, checkpointed, discarded = isolate(policy, 1000, bad)
    assert discarded == [(bad, bad + 1)]  # only the bad record goes to the destination
    # every good record is checkpointed, in order, exactly once
    covered = [i for start, end in checkpointed for i in range(start, end)]
    assert covered == [i for i in range(1000) if i != bad]
    assert invocations <= 2 * math.ceil(math.log2(1000)) + retries + 1


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, DecisionKind.DISCARD),  # no records (a window's final invocation): nothing to split
        (3, 4, DecisionKind.DISCARD),  # one record: it goes to the destination alone
        (0, 2, DecisionKind.SPLIT),
        (0, 7, DecisionKind.SPLIT),
    ],
)
def test_an_oversize_event_is_split_down_to_one_record(start: int, end: int, expected: DecisionKind) -> None:
    decision = DEFAULT.oversize(WorkItem(start, end))
    assert decision.kind is expected
    if expected is DecisionKind.DISCARD:
        assert (decision.condition, decision.discard_from) == (MAXIMUM_PAYLOAD_SIZE_EXCEEDED, start)
    else:
        middle = start + (end - start) // 2
        assert decision.next_items == (WorkItem(start, middle), WorkItem(middle, end))


@pytest.mark.parametrize(
    ("size", "unreadable", "expected"),
    [
        (5, [], [(0, 5, False)]),
        (5, [0], [(0, 1, True), (1, 5, False)]),
        (5, [2], [(0, 2, False), (2, 3, True), (3, 5, False)]),
        (5, [4], [(0, 4, False), (4, 5, True)]),
        (5, [1, 2], [(0, 1, False), (1, 2, True), (2, 3, True), (3, 5, False)]),
        (1, [0], [(0, 1, True)]),
        (0, [], [(0, 0, False)]),  # a window's final invocation: one empty item
    ],
)
def test_each_unreadable_record_is_an_item_of_its_own(
    size: int, unreadable: list[int], expected: list[tuple[int, int, bool]]
) -> None:
    items = DEFAULT.work_items(size, unreadable)
    assert [(i.start, i.end, i.unreadable) for i in items] == expected


def test_an_unreadable_record_is_given_up_without_being_invoked() -> None:
    [item] = DEFAULT.work_items(1, [0])
    decision = AGE_60.before_invoke(item, NOW - 10**6, NOW)  # not an age problem: unreadable first
    assert decision is not None
    assert (decision.kind, decision.condition, decision.invoke_count, decision.discard_from) == (
        DecisionKind.DISCARD,
        "RecordUnreadable",
        0,
        0,
    )
