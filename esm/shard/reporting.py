"""What a shard says about a failed attempt: the words for logs and `esm status` (Lambda's
LastProcessingResult among them). Pure, but for `log_retry`."""

from __future__ import annotations

import logging

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.batch_response import BatchResponse, Verdict
from esm.shard.failures import Attempts

log = logging.getLogger("esm.shard")

_FUNCTION_CALL_FAILED = "PROBLEM: Function call failed"
# Lambda's LastProcessingResult wording by what went wrong (a failing partial response is a
# function call that failed).
_PROCESSING_RESULTS = {
    OutcomeKind.UNREACHABLE: "PROBLEM: Connection error",
    OutcomeKind.THROTTLED: "PROBLEM: Function throttled",
}

# Transient failures (worker down, throttled) are logged on the first and then every Nth retry.
TRANSIENT_LOG_EVERY = 20


def processing_result(outcome: InvokeOutcome) -> str:
    """Lambda's LastProcessingResult after a failed attempt with this outcome."""
    return _PROCESSING_RESULTS.get(outcome.kind, _FUNCTION_CALL_FAILED)


def describe_failure(
    outcome: InvokeOutcome, response: BatchResponse, batch_size: int, first_failed_at: str | None
) -> str:
    """What went wrong with an attempt, in the words of what happened.

    `response` is the reading of a successful call's partial batch response; `first_failed_at`
    the position of its lowest failed record (`offset 1234`), when it reported some."""
    if outcome.kind is not OutcomeKind.SUCCESS:
        return outcome.describe()
    if response.verdict is Verdict.FAILED_FROM:
        where = f", retrying from {first_failed_at}" if first_failed_at else ""
        return f"{response.reported} of {batch_size} records reported failed{where}"
    if response.verdict is Verdict.FAILED:
        return f"the whole batch failed: {response.reason}"
    return "the function's response was not accepted"


def log_retry(shard: str, outcome: InvokeOutcome, failure: str, attempts: Attempts, delay: float) -> None:
    if outcome.kind is OutcomeKind.SUCCESS:
        log.warning("shard %s: %s (retry %d in %.2fs)", shard, failure, attempts.retries, delay)
    elif outcome.kind.function_ran:
        log.warning(
            "shard %s: function failed (retry %d in %.2fs): %s", shard, attempts.retries, delay, failure
        )
    elif attempts.transient_failures % TRANSIENT_LOG_EVERY == 1:
        log.warning(
            "shard %s: function not invoked (%s, %d times): %s; retrying in %.2fs",
            shard,
            outcome.kind.value,
            attempts.transient_failures,
            failure,
            delay,
        )
