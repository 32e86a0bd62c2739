"""What differs between Kinesis and DynamoDB Streams for the stream mapping runner: how to read a
shard, list the shards, and read an event entry's sequence number, time, partition key and
filter view (`StreamRecordFormat` shows them to the engine). Everything else (leases, lanes,
batching, failures) is shared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from esm.destinations.record import StreamKind
from esm.events import dynamodb as dynamodb_events
from esm.events import kinesis as kinesis_events
from esm.events.unreadable import unreadable_positions
from esm.filtering import RecordFilter, dynamodb_filter_view, kinesis_filter_view
from esm.shard.lanes import dynamodb_lane_key, sequence_order
from esm.sources.dynamodb import DynamoDBReaderSettings, DynamoDBShardReader
from esm.sources.kinesis import KinesisReaderSettings, KinesisShardReader
from esm.sources.stream_discovery import DynamoDBShardLister, KinesisShardLister, ShardLister
from esm.sources.stream_shards import ReadResult, StartPosition

EventRecord = dict[str, Any]


class ShardReader(Protocol):
    """esm.sources.kinesis.KinesisShardReader / esm.sources.dynamodb.DynamoDBShardReader."""

    async def read_in(self, executor: Executor) -> ReadResult:
        """One read; what blocks runs on `executor`."""
        ...


@dataclass(frozen=True)
class StreamFlavor:
    name: str
    kind: StreamKind
    sequence_of: Callable[[EventRecord], str]
    time_of: Callable[[EventRecord], float]
    lane_key_of: Callable[[EventRecord], str]
    filter_view: Callable[[EventRecord], dict[str, Any]]
    entry_size: Callable[[EventRecord], int]
    build_event: Callable[[Sequence[EventRecord]], bytes]
    # (client, stream_arn, shard_id, start, monotonic clock, idle poll interval, the function's
    # role ARN for Kinesis' invokeIdentityArn) -> reader
    make_reader: Callable[[Any, str, str, StartPosition, Callable[[], float], float, str], ShardReader]
    make_lister: Callable[[Any, str], ShardLister]
    # The boto3 client that reads records ("kinesis" / "dynamodbstreams").
    client_service: str


def _kinesis_reader(
    client: Any,
    stream_arn: str,
    shard_id: str,
    start: StartPosition,
    clock: Callable[[], float],
    idle: float,
    role_arn: str,
) -> ShardReader:
    settings = KinesisReaderSettings(idle_poll_interval_seconds=idle)
    return KinesisShardReader(
        client, stream_arn, shard_id, start, clock, settings, invoke_identity_arn=role_arn
    )


def _dynamodb_reader(
    client: Any,
    stream_arn: str,
    shard_id: str,
    start: StartPosition,
    clock: Callable[[], float],
    idle: float,
    role_arn: str,  # DynamoDB records carry no invokeIdentityArn
) -> ShardReader:
    settings = DynamoDBReaderSettings(idle_delay_seconds=idle)
    return DynamoDBShardReader(client, stream_arn, shard_id, start, clock, settings)


KINESIS = StreamFlavor(
    name="Kinesis",
    kind=StreamKind.KINESIS,
    sequence_of=lambda entry: str(entry["kinesis"]["sequenceNumber"]),
    time_of=lambda entry: float(entry["kinesis"]["approximateArrivalTimestamp"]),
    lane_key_of=lambda entry: str(entry["kinesis"]["partitionKey"]),
    filter_view=kinesis_filter_view,
    entry_size=kinesis_events.estimated_entry_size,
    build_event=kinesis_events.KinesisEventBuilder().build,
    make_reader=_kinesis_reader,
    make_lister=KinesisShardLister,
    client_service="kinesis",
)

DYNAMODB_STREAMS = StreamFlavor(
    name="DynamoDB Streams",
    kind=StreamKind.DYNAMODB_STREAMS,
    sequence_of=lambda entry: str(entry["dynamodb"]["SequenceNumber"]),
    time_of=lambda entry: float(entry["dynamodb"]["ApproximateCreationDateTime"]),
    lane_key_of=lambda entry: dynamodb_lane_key(entry["dynamodb"].get("Keys", {})),
    filter_view=dynamodb_filter_view,
    entry_size=dynamodb_events.estimated_entry_size,
    build_event=dynamodb_events.DynamoDBEventBuilder().build,
    make_reader=_dynamodb_reader,
    make_lister=DynamoDBShardLister,
    client_service="dynamodbstreams",
)


class StreamRecordFormat:
    """A stream's event entries as the engine sees them (esm.shard.contracts.RecordFormat)."""

    def __init__(self, flavor: StreamFlavor, record_filter: RecordFilter) -> None:
        self._flavor = flavor
        self._filter = record_filter
        self.build_event = flavor.build_event
        self.record_time = flavor.time_of
        self.lane_key = flavor.lane_key_of

    def select(self, records: list[EventRecord]) -> list[EventRecord]:
        if self._filter.accepts_all:
            return records
        view, matches = self._flavor.filter_view, self._filter.matches
        return [record for record in records if matches(view(record))]

    def index_of(self, records: Sequence[EventRecord], identifier: Any) -> int | None:
        """Kinesis and DynamoDB itemIdentifier: the record's sequence number."""
        if not isinstance(identifier, str):
            return None
        sequence_of = self._flavor.sequence_of
        return next((i for i, record in enumerate(records) if sequence_of(record) == identifier), None)

    def unreadable_positions(self, records: Sequence[EventRecord]) -> list[int]:
        return unreadable_positions(records)

    def order(self, record: EventRecord) -> int:
        return sequence_order(self._flavor.sequence_of(record))

    def describe_position(self, record: EventRecord) -> str:
        return f"sequence number {self._flavor.sequence_of(record)}"
