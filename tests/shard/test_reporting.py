"""What a shard says about a failed attempt, in logs and `esm status`."""

import logging

import pytest

from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.shard.batch_response import SUCCEEDED, BatchResponse, Verdict
from esm.shard.failures import Attempts
from esm.shard.reporting import describe_failure, log_retry, processing_result

OK = InvokeOutcome.success(b"{}")
ERROR = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", "bad order 7"))
DOWN = InvokeOutcome(OutcomeKind.UNREACHABLE, detail="no endpoint answered")


@pytest.mark.parametrize(
    ("outcome", "response", "first_failed_at", "text"),
    [
        (ERROR, SUCCEEDED, None, "ValueError: bad order 7"),
        (DOWN, SUCCEEDED, None, "no endpoint answered"),
        (
            OK,
            BatchResponse(Verdict.FAILED_FROM, first_failed=3, reported=2),
            "offset 1234",
            "2 of 10 records reported failed, retrying from offset 1234",
        ),
        (
            OK,
            BatchResponse(Verdict.FAILED, reason="itemIdentifier 'bogus' is not in the batch"),
            None,
            "the whole batch failed: itemIdentifier 'bogus' is not in the batch",
        ),
    ],
)
def test_describe_failure(
    outcome: InvokeOutcome, response: BatchResponse, first_failed_at: str | None, text: str
) -> None:
    assert describe_failure(outcome, response, 10, first_failed_at) == text


@pytest.mark.parametrize(
    ("outcome", "result"),
    [
        (ERROR, "PROBLEM: Function call failed"),
        (OK, "PROBLEM: Function call failed"),  # a failing partial response
        (DOWN, "PROBLEM: Connection error"),
        (InvokeOutcome(OutcomeKind.THROTTLED, detail="busy"), "PROBLEM: Function throttled"),
    ],
)
def test_processing_result_uses_lambdas_words(outcome: InvokeOutcome, result: str) -> None:
    assert processing_result(outcome) == result


def test_a_partial_response_is_never_logged_as_a_function_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    text = describe_failure(OK, BatchResponse(Verdict.FAILED_FROM, 0, reported=1), 5, "offset 9")
    log_retry("t-0", OK, text, Attempts(retries=1), 0.5)
    (line,) = [record.getMessage() for record in caplog.records]
    assert line == "shard t-0: 1 of 5 records reported failed, retrying from offset 9 (retry 1 in 0.50s)"
    assert "success" not in line and "function failed" not in line
