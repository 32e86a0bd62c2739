"""The failure sink of a Kinesis or DynamoDB Streams shard: records the policy gave up on are
written to the on-failure destination with KinesisBatchInfo / DDBStreamBatchInfo."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from esm.destinations import Destination, DestinationError
from esm.destinations.record import StreamBatch, StreamKind, stream_failure_record
from esm.failures import Decision
from esm.mappings.kafka_failures import failure_context
from esm.outcomes import InvokeOutcome
from esm.shard_consumer import FailureSinkError

EventRecord = dict[str, Any]


class StreamFailureSink:
    def __init__(
        self,
        destination: Destination,
        kind: StreamKind,
        shard_id: str,
        stream_arn: str,
        build_event: Callable[[Sequence[EventRecord]], bytes],
        sequence_of: Callable[[EventRecord], str],
        time_of: Callable[[EventRecord], float],
        function_arn: str,
        include_payload: bool,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._destination = destination
        self._kind = kind
        self._shard_id = shard_id
        self._stream_arn = stream_arn
        self._build_event = build_event
        self._sequence_of = sequence_of
        self._time_of = time_of
        self._function_arn = function_arn
        self._include_payload = include_payload
        self._wall_clock = wall_clock

    async def send(
        self, records: Sequence[EventRecord], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        payload = self._build_event(records)
        context = failure_context(decision, last_outcome, self._function_arn, self._wall_clock())
        first, last = records[0], records[-1]
        batch = StreamBatch(
            kind=self._kind,
            shard_id=self._shard_id,
            start_sequence_number=self._sequence_of(first),
            end_sequence_number=self._sequence_of(last),
            first_arrival=datetime.fromtimestamp(self._time_of(first), UTC),
            last_arrival=datetime.fromtimestamp(self._time_of(last), UTC),
            batch_size=len(records),
            stream_arn=self._stream_arn,
        )
        record = stream_failure_record(context, batch, payload, include_payload=self._include_payload)
        try:
            await self._destination.send(record)
        except DestinationError as err:
            raise FailureSinkError(str(err)) from err
        return True
