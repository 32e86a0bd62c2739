"""Kafka records the failure policy gave up on, written to the on-failure destination in
Lambda's shape (KafkaBatchInfo, plus the payload beyond AWS)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from esm.destinations import Destination, DestinationError
from esm.destinations.record import (
    FailureCondition,
    FailureContext,
    KafkaBatch,
    KafkaPartitionRange,
    LastFailure,
    kafka_failure_record,
)
from esm.events.kafka import EventRecord, KafkaEventBuilder
from esm.failures import Decision
from esm.outcomes import InvokeOutcome
from esm.shard_consumer import FailureSinkError


def failure_context(
    decision: Decision, last_outcome: InvokeOutcome | None, function_arn: str, now: float
) -> FailureContext:
    """What an on-failure record says about the invocation that was given up on (any source)."""
    return FailureContext(
        request_id=(
            last_outcome.request_id if last_outcome and last_outcome.request_id else str(uuid.uuid4())
        ),
        function_arn=function_arn,
        condition=FailureCondition(decision.condition),
        approximate_invoke_count=decision.invoke_count,
        timestamp=datetime.fromtimestamp(now, UTC),
        last_failure=LastFailure.UNHANDLED if decision.function_error else LastFailure.PARTIAL_BATCH_RESPONSE,
    )


class KafkaFailureSink:
    def __init__(
        self,
        destination: Destination,
        partition_key: str,
        builder: KafkaEventBuilder,
        function_arn: str,
        include_payload: bool,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._destination = destination
        self._key = partition_key
        self._builder = builder
        self._function_arn = function_arn
        self._include_payload = include_payload
        self._wall_clock = wall_clock

    async def send(
        self, records: Sequence[EventRecord], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        payload = self._builder.build(self._key, records)
        context = failure_context(decision, last_outcome, self._function_arn, self._wall_clock())
        first, last = records[0], records[-1]
        batch = KafkaBatch(
            bootstrap_servers=self._builder.bootstrap_servers,
            event_source_arn=None,
            batch_size=len(records),
            payload_size=len(payload),
            partitions=(
                KafkaPartitionRange(
                    first["topic"],
                    first["partition"],
                    first["offset"],
                    last["offset"],
                    first["timestamp"],
                    last["timestamp"],
                ),
            ),
        )
        record = kafka_failure_record(context, batch, payload, include_payload=self._include_payload)
        try:
            await self._destination.send(record)
        except DestinationError as err:
            raise FailureSinkError(str(err)) from err
        return True
