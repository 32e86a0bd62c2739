"""What the Kafka and stream failure sinks share: describing the invocation that was given up on
(Lambda's requestContext / responseContext) and writing the record to the on-failure destination."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from esm.destinations import Destination, DestinationError
from esm.destinations.record import FailureCondition, FailureContext, LastFailure
from esm.dispatch.outcomes import InvokeOutcome
from esm.shard.failures import Decision
from esm.shard.sink import FailureSinkError


class DestinationSink:
    def __init__(
        self,
        destination: Destination,
        function_arn: str,
        include_payload: bool,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._destination = destination
        self._function_arn = function_arn
        self._include_payload = include_payload
        self._wall_clock = wall_clock

    def _context(self, decision: Decision, last_outcome: InvokeOutcome | None) -> FailureContext:
        """What the on-failure record says about the invocation given up on (now)."""
        return FailureContext(
            request_id=(
                last_outcome.request_id if last_outcome and last_outcome.request_id else str(uuid.uuid4())
            ),
            function_arn=self._function_arn,
            condition=FailureCondition(decision.condition),
            approximate_invoke_count=decision.invoke_count,
            timestamp=datetime.fromtimestamp(self._wall_clock(), UTC),
            last_failure=LastFailure.UNHANDLED
            if decision.function_error
            else LastFailure.PARTIAL_BATCH_RESPONSE,
            last_error=last_outcome.error if last_outcome else None,
        )

    async def _write(self, record: dict[str, Any]) -> bool:
        """Writes the record; FailureSinkError (the shard retries) when the destination cannot."""
        try:
            await self._destination.send(record)
        except DestinationError as err:
            raise FailureSinkError(str(err)) from err
        return True
