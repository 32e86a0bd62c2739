"""The on-failure record: what Lambda writes to a destination when a batch is given up on.

    {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
     "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
     "KafkaBatchInfo" | "KinesisBatchInfo" | "DDBStreamBatchInfo": {...},
     "payload": {...the invocation event...}}

esm extension: when the last invocation failed with a function error, `"esm": {"lastFunctionError":
{"errorType", "errorMessage"}}` follows `responseContext` (AWS writes only "Unhandled"; the runtime's
error type and message say what failed).

Key order, value types and timestamp formats follow the records AWS wrote (the recorded fixtures
in tests/fixtures/aws-recorded and AWS's Kafka documentation). `responseContext` depends on the
condition: present after RetryAttemptsExhausted; absent after RecordAgeExceeded (as recorded);
null after MaximumPayloadSizeExceeded (the function never saw the batch; AWS documents null) and
after esm's own RecordUnreadable (a record the reader could not decode; its entry in the payload
says why). A Kafka timestamp with no instant to write (-1, or past year 9999) is written null.

Pure: every time is an input; nothing here reads the clock or does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from esm.dispatch.outcomes import FunctionError

RECORD_VERSION = "1.0"
_STATUS_CODE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FailureCondition(enum.Enum):
    """Why the batch went to the destination (the record's `requestContext.condition`)."""

    RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
    RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED = "MaximumPayloadSizeExceeded"
    # esm's own: a record the reader could not decode, given up on without invoking the function.
    RECORD_UNREADABLE = "RecordUnreadable"


# Conditions under which the function never saw the records: responseContext is null.
_NEVER_INVOKED = frozenset(
    {FailureCondition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED, FailureCondition.RECORD_UNREADABLE}
)


class LastFailure(enum.Enum):
    """How the last invocation failed; gives `responseContext.functionError`."""

    # The function raised, returned something unusable, or timed out.
    UNHANDLED = "Unhandled"
    # The function returned a partial batch response: AWS writes `"functionError": null`.
    PARTIAL_BATCH_RESPONSE = "PartialBatchResponse"

    @property
    def function_error(self) -> str | None:
        return "Unhandled" if self is LastFailure.UNHANDLED else None


class StreamKind(enum.Enum):
    """The stream source of a `StreamBatch`: names the batch-info key and its time format."""

    KINESIS = "KinesisBatchInfo"
    DYNAMODB_STREAMS = "DDBStreamBatchInfo"


@dataclass(frozen=True)
class FailureContext:
    """What is known about the failed invocation; `timestamp` is when the batch was given up on."""

    request_id: str
    function_arn: str
    condition: FailureCondition
    approximate_invoke_count: int
    timestamp: datetime
    last_failure: LastFailure = LastFailure.UNHANDLED
    executed_version: str = "$LATEST"
    # The function's error on the last attempt, if it raised, timed out or crashed.
    last_error: FunctionError | None = None

    def __post_init__(self) -> None:
        if self.approximate_invoke_count < 0:
            raise ValueError(
                f"FailureContext.approximate_invoke_count must be >= 0, got {self.approximate_invoke_count}"
            )
        _require_aware("FailureContext.timestamp", self.timestamp)


@dataclass(frozen=True)
class KafkaPartitionRange:
    """The span of one partition's records in a failed Kafka batch (Kafka's timestamps are epoch ms)."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    first_timestamp_ms: int
    last_timestamp_ms: int

    def __post_init__(self) -> None:
        if self.last_offset < self.first_offset:
            raise ValueError(
                f"KafkaPartitionRange {self.key}: last_offset {self.last_offset} is below "
                f"first_offset {self.first_offset}"
            )

    @property
    def key(self) -> str:
        """`<topic>-<partition>`, the key Lambda files a partition's records under."""
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class KafkaBatch:
    """A failed Kafka batch. `event_source_arn` is None for self-managed Kafka (AWS writes null)."""

    bootstrap_servers: tuple[str, ...]
    event_source_arn: str | None
    batch_size: int
    payload_size: int
    partitions: tuple[KafkaPartitionRange, ...]

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"KafkaBatch.batch_size must be at least 1, got {self.batch_size}")
        if self.payload_size < 0:
            raise ValueError(f"KafkaBatch.payload_size must be >= 0, got {self.payload_size}")
        if not self.partitions:
            raise ValueError("KafkaBatch.partitions is empty: a failed batch covers at least one partition")

    @classmethod
    def from_event(cls, event: Mapping[str, Any], payload_size: int) -> KafkaBatch:
        """Describe the batch a Lambda Kafka event carries (`records` keyed "<topic>-<partition>").

        The ARN is the event's `eventSourceArn` (MSK events have one; self-managed ones do not).
        """
        records = event.get("records")
        if not isinstance(records, Mapping) or not records:
            raise ValueError("Kafka event: `records` is missing or empty; cannot describe the failed batch")
        ranges: list[KafkaPartitionRange] = []
        batch_size = 0
        for key, entries in records.items():
            if not isinstance(entries, Sequence) or not entries:
                raise ValueError(f"Kafka event: records[{key!r}] is not a non-empty list")
            first, last = entries[0], entries[-1]
            try:
                part = KafkaPartitionRange(
                    topic=str(first["topic"]),
                    partition=int(first["partition"]),
                    first_offset=int(first["offset"]),
                    last_offset=int(last["offset"]),
                    first_timestamp_ms=int(first["timestamp"]),
                    last_timestamp_ms=int(last["timestamp"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"Kafka event: records[{key!r}] needs topic, partition, offset and timestamp "
                    f"on its first and last entries ({type(exc).__name__}: {exc})"
                ) from exc
            ranges.append(part)
            batch_size += len(entries)
        servers = str(event.get("bootstrapServers") or "")
        arn = event.get("eventSourceArn")
        return cls(
            bootstrap_servers=tuple(s for s in servers.split(",") if s),
            event_source_arn=None if arn is None else str(arn),
            batch_size=batch_size,
            payload_size=payload_size,
            partitions=tuple(ranges),
        )


@dataclass(frozen=True)
class StreamBatch:
    """A failed Kinesis or DynamoDB Streams batch (one shard's records, first to last)."""

    kind: StreamKind
    shard_id: str
    start_sequence_number: str
    end_sequence_number: str
    first_arrival: datetime
    last_arrival: datetime
    batch_size: int
    stream_arn: str

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"StreamBatch.batch_size must be at least 1, got {self.batch_size}")
        _require_aware("StreamBatch.first_arrival", self.first_arrival)
        _require_aware("StreamBatch.last_arrival", self.last_arrival)


def kafka_failure_record(
    context: FailureContext, batch: KafkaBatch, payload: bytes, *, include_payload: bool = True
) -> dict[str, Any]:
    """The on-failure record of a Kafka batch; `payload` is the invocation event's JSON bytes."""
    info = {
        "batchSize": batch.batch_size,
        "eventSourceArn": batch.event_source_arn,
        "bootstrapServers": ",".join(batch.bootstrap_servers),
        "payloadSize": batch.payload_size,
        "recordsInfo": {
            part.key: {
                "firstRecordOffset": str(part.first_offset),
                "lastRecordOffset": str(part.last_offset),
                "firstRecordTimestamp": _kafka_time(part.first_timestamp_ms),
                "lastRecordTimestamp": _kafka_time(part.last_timestamp_ms),
            }
            for part in batch.partitions
        },
    }
    return _record(context, "KafkaBatchInfo", info, payload, include_payload)


def stream_failure_record(
    context: FailureContext, batch: StreamBatch, payload: bytes, *, include_payload: bool = True
) -> dict[str, Any]:
    """The on-failure record of a Kinesis or DynamoDB Streams batch."""
    # AWS writes Kinesis arrivals with milliseconds and DynamoDB's (whole-second values) without.
    arrival = format_millis if batch.kind is StreamKind.KINESIS else format_seconds
    info = {
        "shardId": batch.shard_id,
        "startSequenceNumber": batch.start_sequence_number,
        "endSequenceNumber": batch.end_sequence_number,
        "approximateArrivalOfFirstRecord": arrival(batch.first_arrival),
        "approximateArrivalOfLastRecord": arrival(batch.last_arrival),
        "batchSize": batch.batch_size,
        "streamArn": batch.stream_arn,
    }
    return _record(context, batch.kind.value, info, payload, include_payload)


def format_millis(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and Z, as AWS writes it: 2019-11-14T00:38:06.021Z."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def format_seconds(moment: datetime) -> str:
    """ISO-8601 in UTC to the second with Z: 2022-07-13T13:48:01Z."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


def _record(
    context: FailureContext, info_key: str, info: dict[str, Any], payload: bytes, include_payload: bool
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": context.request_id,
            "functionArn": context.function_arn,
            "condition": context.condition.value,
            "approximateInvokeCount": context.approximate_invoke_count,
        }
    }
    if context.condition is FailureCondition.RETRY_ATTEMPTS_EXHAUSTED:
        record["responseContext"] = {
            "statusCode": _STATUS_CODE,
            "executedVersion": context.executed_version,
            "functionError": context.last_failure.function_error,
        }
    elif context.condition in _NEVER_INVOKED:
        record["responseContext"] = None
    if context.last_error is not None:
        record["esm"] = {
            "lastFunctionError": {
                "errorType": context.last_error.error_type,
                "errorMessage": context.last_error.error_message,
            }
        }
    record["version"] = RECORD_VERSION
    record["timestamp"] = format_millis(context.timestamp)
    record[info_key] = info
    if include_payload:
        record["payload"] = _parse_payload(payload)
    return record


def _parse_payload(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"failure record: the invocation payload is not valid JSON ({exc})") from exc


def _kafka_time(timestamp_ms: int) -> str | None:
    # Kafka uses -1 for "no timestamp" (old message formats); there is no instant to write.
    if timestamp_ms < 0:
        return None
    try:
        # Integer arithmetic: a float of epoch seconds would round some milliseconds down.
        return format_millis(_EPOCH + timedelta(milliseconds=timestamp_ms))
    except OverflowError:
        return None  # a producer may set any 64-bit timestamp; datetime stops at year 9999


def _require_aware(field: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware (e.g. datetime.now(UTC)), got naive {moment!r}")
