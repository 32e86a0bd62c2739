"""Kafka records the failure policy gave up on, written to the on-failure destination in
Lambda's shape (KafkaBatchInfo, plus the payload beyond AWS)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from esm.destinations import Destination
from esm.destinations.record import KafkaBatch, KafkaPartitionRange, kafka_failure_record
from esm.dispatch.outcomes import InvokeOutcome
from esm.events.kafka import EventRecord, KafkaEventBuilder
from esm.mappings.failure_sinks import DestinationSink
from esm.shard.failures import Decision


class KafkaFailureSink(DestinationSink):
    def __init__(
        self,
        destination: Destination,
        partition_key: str,
        builder: KafkaEventBuilder,
        function_arn: str,
        include_payload: bool,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(destination, function_arn, include_payload, wall_clock)
        self._key = partition_key
        self._builder = builder

    async def send(
        self, records: Sequence[EventRecord], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        payload = self._builder.build(self._key, records)
        context = self._context(decision, last_outcome)
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
        return await self._write(
            kafka_failure_record(context, batch, payload, include_payload=self._include_payload)
        )
