"""The failure sink of a Kinesis or DynamoDB Streams shard: records the policy gave up on are
written to the on-failure destination with KinesisBatchInfo / DDBStreamBatchInfo."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from esm.destinations import Destination
from esm.destinations.record import StreamBatch, stream_failure_record
from esm.dispatch.outcomes import InvokeOutcome
from esm.mappings.failure_sinks import DestinationSink
from esm.mappings.stream_flavors import EventRecord, StreamFlavor
from esm.shard.failures import Decision


class StreamFailureSink(DestinationSink):
    def __init__(
        self,
        destination: Destination,
        flavor: StreamFlavor,
        shard_id: str,
        stream_arn: str,
        function_arn: str,
        include_payload: bool,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(destination, function_arn, include_payload, wall_clock)
        self._flavor = flavor
        self._shard_id = shard_id
        self._stream_arn = stream_arn

    async def send(
        self, records: Sequence[EventRecord], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        flavor = self._flavor
        payload = flavor.build_event(records)
        first, last = records[0], records[-1]
        batch = StreamBatch(
            kind=flavor.kind,
            shard_id=self._shard_id,
            start_sequence_number=flavor.sequence_of(first),
            end_sequence_number=flavor.sequence_of(last),
            first_arrival=datetime.fromtimestamp(flavor.time_of(first), UTC),
            last_arrival=datetime.fromtimestamp(flavor.time_of(last), UTC),
            batch_size=len(records),
            stream_arn=self._stream_arn,
        )
        context = self._context(decision, last_outcome)
        return await self._write(
            stream_failure_record(context, batch, payload, include_payload=self._include_payload)
        )
