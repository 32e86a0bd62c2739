"""Small pieces the shard consumers (ordinary and tumbling-window) and the stream shards share:
the failure sink contract, waiting out a backoff unless halted, Lambda's LastProcessingResult
wording, and logging retries without flooding. (Their common lifecycle is
esm.shard.lane.ShardConsumerBase.)"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol, TypeVar

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.shard.failures import Attempts, Decision

log = logging.getLogger("esm.shard.lane")

R_contra = TypeVar("R_contra", contravariant=True)


class FailureSink(Protocol[R_contra]):
    """Where records go when the policy gives up on them (the on-failure destination)."""

    async def send(
        self, records: Sequence[R_contra], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        """Writes the records durably and returns True, or returns False when it drops them by
        design (no destination configured); raises FailureSinkError when it cannot write now."""
        ...


class FailureSinkError(Exception):
    """The failure sink could not write the records now; the shard retries."""


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


async def halted_within(halt: asyncio.Event, seconds: float | None) -> bool:
    """Waits `seconds` (None: for ever) unless `halt` is set first (True).

    asyncio.timeout rather than wait_for: on Python 3.11 wait_for can swallow a cancellation that
    races its timeout, and a shard's task must end when it is cancelled."""
    try:
        async with asyncio.timeout(seconds):
            await halt.wait()
    except TimeoutError:
        return False
    return True


def log_retry(shard_id: str, outcome: InvokeOutcome, failure: str, attempts: Attempts, delay: float) -> None:
    if outcome.kind.function_ran or outcome.kind is OutcomeKind.SUCCESS:
        log.warning(
            "shard %s: function failed (retry %d): %s; retrying in %.2fs",
            shard_id,
            attempts.retries,
            failure,
            delay,
        )
    elif attempts.transient_failures % TRANSIENT_LOG_EVERY == 1:
        log.warning(
            "shard %s: function not invoked (%s, %d times): %s; retrying in %.2fs",
            shard_id,
            outcome.kind.value,
            attempts.transient_failures,
            outcome.describe(),
            delay,
        )
