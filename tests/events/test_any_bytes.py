"""Property tests over record bytes (issue 10, go further): whatever a record holds, the event
builders make JSON a function can read, carry the bytes exactly, keep within their size
estimates (the 6 MB cut relies on them), and the record can be written to an on-failure
destination and read back."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from esm.destinations.encoding import encode_record, read_entry
from esm.destinations.record import (
    FailureCondition,
    FailureContext,
    KafkaBatch,
    StreamBatch,
    StreamKind,
    kafka_failure_record,
    stream_failure_record,
)
from esm.events import dynamodb, kafka, kinesis
from esm.events.unreadable import unreadable_reason, valid_text

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
# Any text, unpaired surrogates (which DynamoDB Local returns) often among it. Built from a list
# of characters: `st.text` leaves surrogates out.
ANY_TEXT = st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=20).map("".join)
TOPICS = st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True)


def context(condition: FailureCondition) -> FailureContext:
    return FailureContext("req", "arn:aws:lambda:us-east-1:000000000000:function:f", condition, 1, WHEN)


def round_trips(record: dict[str, Any]) -> None:
    """A failure record is stored and read back unchanged."""
    assert read_entry(encode_record(record), "test") == record


kafka_headers = st.lists(
    st.tuples(
        # Names as the readers hand them over: decoded text, U+FFFD where bytes were not UTF-8.
        st.binary(max_size=12).map(lambda raw: raw.decode("utf-8", "replace")) | st.text(max_size=12),
        st.one_of(st.none(), st.binary(max_size=24)),
    ),
    max_size=5,
)


@settings(deadline=None)
@given(
    topic=TOPICS,
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    key=st.one_of(st.none(), st.binary(max_size=64)),
    value=st.one_of(st.none(), st.binary(max_size=64)),
    headers=kafka_headers,
)
def test_any_kafka_record_makes_a_readable_event_and_failure_record(
    topic: str,
    partition: int,
    offset: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
) -> None:
    entry = kafka.event_record(topic, partition, offset, timestamp, "CREATE_TIME", key, value, headers)
    key_in_partition = f"{topic}-{partition}"
    event = kafka.KafkaEventBuilder(["h:9092"]).build(key_in_partition, [entry])
    [got] = orjson.loads(event)["records"][key_in_partition]
    assert ("key" in got) == (key is not None)
    if key is not None:
        assert base64.b64decode(got["key"]) == key
    assert got["value"] is None if value is None else base64.b64decode(got["value"]) == value
    assert got["headers"] == [{name: list(raw or b"")} for name, raw in headers]
    assert len(orjson.dumps(entry)) + 1 <= kafka.estimated_entry_size(entry)
    parsed = orjson.loads(event)
    record = kafka_failure_record(
        context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), KafkaBatch.from_event(parsed, len(event)), event
    )
    round_trips(record)


@settings(deadline=None)
@given(
    data=st.binary(max_size=128),
    partition_key=ANY_TEXT,
    sequence=st.from_regex(r"[0-9]{1,56}", fullmatch=True),
    arrival=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_any_kinesis_record_makes_a_readable_event_and_failure_record(
    data: bytes, partition_key: str, sequence: str, arrival: datetime
) -> None:
    origin = kinesis.KinesisShardOrigin(
        "arn:aws:kinesis:us-east-1:000000000000:stream/s", "shardId-000000000000", "us-east-1", ""
    )
    boto3_record = {
        "SequenceNumber": sequence,
        "Data": data,
        "PartitionKey": partition_key,
        "ApproximateArrivalTimestamp": arrival,
    }
    entry = kinesis.event_record(boto3_record, origin)
    event = kinesis.KinesisEventBuilder().build([entry])
    [got] = orjson.loads(event)["Records"]
    assert base64.b64decode(got["kinesis"]["data"]) == data
    assert got["kinesis"]["partitionKey"] == valid_text(partition_key)
    assert len(orjson.dumps(entry)) <= kinesis.estimated_entry_size(entry)
    batch = StreamBatch(
        StreamKind.KINESIS, origin.shard_id, sequence, sequence, arrival, arrival, 1, origin.stream_arn
    )
    round_trips(stream_failure_record(context(FailureCondition.RECORD_AGE_EXCEEDED), batch, event))


attribute_values = st.recursive(
    st.one_of(
        ANY_TEXT.map(lambda text: {"S": text}),
        st.integers().map(lambda n: {"N": str(n)}),
        st.binary(max_size=32).map(lambda raw: {"B": raw}),
        st.booleans().map(lambda flag: {"BOOL": flag}),
        st.just({"NULL": True}),
        st.lists(ANY_TEXT, min_size=1, max_size=3).map(lambda texts: {"SS": texts}),
        st.lists(st.binary(max_size=8), min_size=1, max_size=3).map(lambda raws: {"BS": raws}),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: {"L": items}),
        st.dictionaries(ANY_TEXT, inner, max_size=3).map(lambda fields: {"M": fields}),
    ),
    max_leaves=10,
)


def binaries(value: Any) -> list[bytes]:
    """Every binary in an attribute value (or image), in order."""
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, dict):
        return [raw for inner in value.values() for raw in binaries(inner)]
    if isinstance(value, list):
        return [raw for inner in value for raw in binaries(inner)]
    return []


def decoded_binaries(value: Any, kind: str = "") -> list[bytes]:
    if isinstance(value, dict):
        return [raw for k, inner in value.items() for raw in decoded_binaries(inner, k)]
    if isinstance(value, list):
        return [raw for inner in value for raw in decoded_binaries(inner, kind)]
    if kind in ("B", "BS") and isinstance(value, str):
        return [base64.b64decode(value)]
    return []


@settings(deadline=None)
@given(image=st.dictionaries(ANY_TEXT, attribute_values, max_size=5))
def test_any_dynamodb_item_makes_a_readable_event_and_failure_record(image: dict[str, Any]) -> None:
    arn = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2024-01-01T00:00:00.000"
    boto3_record = {
        "eventID": "e1",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": WHEN,
            "Keys": {"id": {"S": "k"}},
            "NewImage": image,
            "SequenceNumber": "100",
        },
    }
    entry = dynamodb.event_record(boto3_record, arn)
    event = dynamodb.DynamoDBEventBuilder().build([entry])  # UTF-8 JSON: raises on a surrogate
    [got] = orjson.loads(event)["Records"]
    if unreadable_reason(entry) is None:
        assert decoded_binaries(got["dynamodb"]["NewImage"]) == binaries(image)
    else:  # only when names collide once their surrogates are replaced: nothing may be lost
        assert "are one once unpaired surrogates are replaced" in str(unreadable_reason(entry))
    assert len(orjson.dumps(entry)) <= dynamodb.estimated_entry_size(entry)
    batch = StreamBatch(StreamKind.DYNAMODB_STREAMS, "shardId-1", "100", "100", WHEN, WHEN, 1, arn)
    round_trips(stream_failure_record(context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), batch, event))
