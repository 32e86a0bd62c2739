import pytest

from esm.failures import Backoff, Decision, DecisionKind, FailurePolicy, RetryState
from esm.outcomes import FunctionError, InvokeOutcome, OutcomeKind

ERROR = FunctionError("ValueError", "bad record")
POLICY = FailurePolicy(
    function_error_backoff=Backoff(initial_seconds=1.0, cap_seconds=30.0),
    transient_backoff=Backoff(initial_seconds=0.05, cap_seconds=2.0),
)


def outcome(kind: OutcomeKind) -> InvokeOutcome:
    if kind is OutcomeKind.SUCCESS:
        return InvokeOutcome.success(b"null")
    if kind.function_ran:
        return InvokeOutcome(kind, error=ERROR)
    return InvokeOutcome(kind, detail="worker down")


# rand() = 1.0 makes the jittered delay its upper bound, so the table shows the full schedule.
@pytest.mark.parametrize(
    ("kind", "state", "expected"),
    [
        (OutcomeKind.SUCCESS, RetryState(), Decision(DecisionKind.CHECKPOINT)),
        (OutcomeKind.SUCCESS, RetryState(5, 3), Decision(DecisionKind.CHECKPOINT)),
        # function errors count attempts, 1 s doubling to the 30 s cap
        (OutcomeKind.FUNCTION_ERROR, RetryState(), Decision(DecisionKind.RETRY, 1.0, RetryState(1, 0))),
        (OutcomeKind.FUNCTION_ERROR, RetryState(1), Decision(DecisionKind.RETRY, 2.0, RetryState(2, 0))),
        (OutcomeKind.FUNCTION_ERROR, RetryState(5), Decision(DecisionKind.RETRY, 30.0, RetryState(6, 0))),
        (OutcomeKind.TIMEOUT, RetryState(2), Decision(DecisionKind.RETRY, 4.0, RetryState(3, 0))),
        # a function error after transient failures resets their backoff
        (OutcomeKind.FUNCTION_ERROR, RetryState(0, 7), Decision(DecisionKind.RETRY, 1.0, RetryState(1, 0))),
        # throttles and unreachable workers do not count attempts
        (OutcomeKind.THROTTLED, RetryState(), Decision(DecisionKind.RETRY, 0.05, RetryState(0, 1))),
        (OutcomeKind.UNREACHABLE, RetryState(2, 1), Decision(DecisionKind.RETRY, 0.1, RetryState(2, 2))),
        (OutcomeKind.UNREACHABLE, RetryState(0, 40), Decision(DecisionKind.RETRY, 2.0, RetryState(0, 41))),
    ],
)
def test_decide(kind: OutcomeKind, state: RetryState, expected: Decision) -> None:
    assert POLICY.decide(outcome(kind), state, rand=lambda: 1.0) == expected


def test_jitter_stays_within_half_to_full_delay() -> None:
    backoff = Backoff(1.0, 30.0)
    assert backoff.delay(3, lambda: 0.0) == 4.0
    assert backoff.delay(3, lambda: 1.0) == 8.0


def test_invoke_count_includes_the_current_invocation() -> None:
    assert RetryState(attempts=3).invoke_count == 4
