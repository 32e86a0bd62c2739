"""The failure record against what AWS wrote (tests/fixtures/aws-recorded) and documents for Kafka.

Each recorded record is rebuilt from the same inputs and compared key by key: same keys (and order,
except the S3 bodies, which the recorder stored sorted), same value types, equal fixed values, and
timestamps in the format of the recorded sample behind each `<timestamp:...>` placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from aws_recorded import recorded_fixtures

from esm.destinations.record import (
    FailureCondition,
    FailureContext,
    KafkaBatch,
    KafkaPartitionRange,
    LastFailure,
    StreamBatch,
    StreamKind,
    format_millis,
    kafka_failure_record,
    stream_failure_record,
)
from esm.dispatch.outcomes import FunctionError
from esm.events.kafka import KafkaEventBuilder, event_record

_RECORD_KEYS = ("sqs_payload", "failure_sns_message", "record_body", "record_age_exceeded_payload")
_PLACEHOLDER = re.compile(r"<(?P<kind>[a-z0-9-]+)(?::(?P<sample>[^<>]*))?>")
_ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

WHEN = datetime(2024, 3, 1, 12, 30, 45, 678_901, tzinfo=UTC)
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111111111111:function:orders"
DDB_STREAM_ARN = "arn:aws:dynamodb:us-east-1:111111111111:table/orders/stream/2024-03-01T00:00:00.000"
STREAM_ARNS = {
    StreamKind.KINESIS: "arn:aws:kinesis:us-east-1:111111111111:stream/orders",
    StreamKind.DYNAMODB_STREAMS: DDB_STREAM_ARN,
}


def _recorded_failure_records() -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(scenario, record, key order meaningful) for every on-failure record in the fixtures."""
    for path in recorded_fixtures():
        for scenario, body in orjson.loads(path.read_bytes()).items():
            content = body.get("recorded-content", {})
            for key in _RECORD_KEYS:
                if key not in content:
                    continue
                name = f"{path.name.split('-')[0]}:{scenario.rsplit('::', 1)[-1]}:{key}"
                value = content[key]
                if key == "failure_sns_message":
                    yield name, value["Message"], True
                elif key == "record_body":
                    yield name, value, False  # stored with sorted keys
                else:
                    for message in value["Messages"]:
                        yield name, message["Body"], True


RECORDED = list(_recorded_failure_records())


def test_the_fixtures_hold_every_condition_and_source_we_compare_against() -> None:
    # Guards the golden tests below from silently comparing nothing.
    infos = {next(k for k in rec if k.endswith("BatchInfo")) for _, rec, _ in RECORDED}
    conditions = {rec["requestContext"]["condition"] for _, rec, _ in RECORDED}
    errors = {rec["responseContext"]["functionError"] for _, rec, _ in RECORDED if "responseContext" in rec}
    assert infos == {"KinesisBatchInfo", "DDBStreamBatchInfo"}
    assert conditions == {"RetryAttemptsExhausted", "RecordAgeExceeded"}
    assert errors == {"Unhandled", None}
    assert any("payload" in rec for _, rec, _ in RECORDED)


def _rebuild(recorded: dict[str, Any]) -> dict[str, Any]:
    """Our record from the inputs the recorded one implies (its fixed values and payload)."""
    request = recorded["requestContext"]
    response = recorded.get("responseContext")
    context = FailureContext(
        request_id="4f0c0e5c-1a53-4c1e-9d0e-2f7b0c3c9a11",
        function_arn=FUNCTION_ARN,
        condition=FailureCondition(request["condition"]),
        approximate_invoke_count=request["approximateInvokeCount"],
        timestamp=WHEN,
        last_failure=LastFailure.PARTIAL_BATCH_RESPONSE
        if response is not None and response["functionError"] is None
        else LastFailure.UNHANDLED,
    )
    kind = StreamKind.KINESIS if "KinesisBatchInfo" in recorded else StreamKind.DYNAMODB_STREAMS
    info = recorded[kind.value]
    shard = info["shardId"]
    batch = StreamBatch(
        kind=kind,
        shard_id=shard if not _PLACEHOLDER.fullmatch(shard) else "shardId-00000001700000000000-abcdef12",
        start_sequence_number="49650000000000000000000000000000000000000000000000000002",
        end_sequence_number="49650000000000000000000000000000000000000000000000000002",
        first_arrival=WHEN - timedelta(seconds=90),
        last_arrival=WHEN - timedelta(seconds=30),
        batch_size=info["batchSize"],
        stream_arn=STREAM_ARNS[kind],
    )
    payload = orjson.dumps(recorded["payload"]) if "payload" in recorded else b"{}"
    return stream_failure_record(context, batch, payload, include_payload="payload" in recorded)


def _assert_like(ours: Any, recorded: Any, path: str, ordered: bool) -> None:
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), f"{path}: {ours!r} is not an object"
        if ordered:
            assert list(ours) == list(recorded), f"{path}: key order differs"
        else:
            assert sorted(ours) == sorted(recorded), f"{path}: keys differ"
        for key, value in recorded.items():
            _assert_like(ours[key], value, f"{path}.{key}", ordered)
        return
    if isinstance(recorded, list):
        assert isinstance(ours, list) and len(ours) == len(recorded), f"{path}: list differs"
        for index, (mine, theirs) in enumerate(zip(ours, recorded, strict=True)):
            _assert_like(mine, theirs, f"{path}[{index}]", ordered)
        return
    if isinstance(recorded, str) and _PLACEHOLDER.search(recorded):
        assert isinstance(ours, str), f"{path}: {ours!r} should be a string like {recorded!r}"
        assert re.fullmatch(_shape(recorded), ours), f"{path}: {ours!r} is not shaped like {recorded!r}"
        return
    assert type(ours) is type(recorded) and ours == recorded, f"{path}: {ours!r} != {recorded!r}"


def _shape(recorded: str) -> str:
    """A regex for a recorded string: fixed text literally, each placeholder as what it stands for.

    A `<timestamp:SAMPLE>` keeps its sample's shape (digits stay digits, the rest is literal), so
    the format is checked too: milliseconds or not, the Z.
    """
    pattern, end = "", 0
    for placeholder in _PLACEHOLDER.finditer(recorded):
        pattern += re.escape(recorded[end : placeholder.start()])
        sample = placeholder["sample"]
        if placeholder["kind"] == "timestamp" and sample:
            pattern += re.sub(r"\d", r"\\d", re.escape(sample))
        else:
            pattern += r"[^\s]+"
        end = placeholder.end()
    return pattern + re.escape(recorded[end:])


@pytest.mark.parametrize(("scenario", "recorded", "ordered"), RECORDED, ids=[r[0] for r in RECORDED])
def test_stream_record_matches_what_aws_wrote(scenario: str, recorded: dict[str, Any], ordered: bool) -> None:
    _assert_like(_rebuild(recorded), recorded, "record", ordered)


def test_a_payload_the_function_received_is_kept_exactly() -> None:
    recorded = next(rec for _, rec, _ in RECORDED if "payload" in rec)
    assert _rebuild(recorded)["payload"] == recorded["payload"]


def _context(
    condition: FailureCondition, last_failure: LastFailure = LastFailure.UNHANDLED
) -> FailureContext:
    return FailureContext(
        request_id="req-1",
        function_arn=FUNCTION_ARN,
        condition=condition,
        approximate_invoke_count=4,
        timestamp=WHEN,
        last_failure=last_failure,
    )


def _kinesis_batch() -> StreamBatch:
    return StreamBatch(
        kind=StreamKind.KINESIS,
        shard_id="shardId-000000000000",
        start_sequence_number="101",
        end_sequence_number="205",
        first_arrival=datetime(2024, 3, 1, 12, 0, 0, 5_000, tzinfo=UTC),
        last_arrival=datetime(2024, 3, 1, 12, 0, 1, 999_999, tzinfo=UTC),
        batch_size=3,
        stream_arn="arn:aws:kinesis:us-east-1:111111111111:stream/orders",
    )


def test_stream_record_values() -> None:
    record = stream_failure_record(
        _context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), _kinesis_batch(), b'{"Records": []}'
    )
    assert record == {
        "requestContext": {
            "requestId": "req-1",
            "functionArn": FUNCTION_ARN,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        # Milliseconds are truncated, as a clock that reads 45.678901 has not reached 45.679.
        "timestamp": "2024-03-01T12:30:45.678Z",
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000000",
            "startSequenceNumber": "101",
            "endSequenceNumber": "205",
            "approximateArrivalOfFirstRecord": "2024-03-01T12:00:00.005Z",
            "approximateArrivalOfLastRecord": "2024-03-01T12:00:01.999Z",
            "batchSize": 3,
            "streamArn": "arn:aws:kinesis:us-east-1:111111111111:stream/orders",
        },
        "payload": {"Records": []},
    }


def test_dynamodb_arrivals_are_whole_seconds_under_their_own_key() -> None:
    batch = StreamBatch(
        kind=StreamKind.DYNAMODB_STREAMS,
        shard_id="shardId-00000001709294400000-1a2b3c4d",
        start_sequence_number="100",
        end_sequence_number="300",
        first_arrival=datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
        last_arrival=datetime(2024, 3, 1, 12, 0, 2, 500_000, tzinfo=UTC),
        batch_size=2,
        stream_arn=DDB_STREAM_ARN,
    )
    record = stream_failure_record(_context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), batch, b"{}")
    assert "KinesisBatchInfo" not in record
    info = record["DDBStreamBatchInfo"]
    assert info["approximateArrivalOfFirstRecord"] == "2024-03-01T12:00:00Z"
    assert info["approximateArrivalOfLastRecord"] == "2024-03-01T12:00:02Z"


def test_times_in_other_zones_are_written_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_millis(datetime(2024, 3, 1, 13, 0, 0, 250_000, tzinfo=paris)) == "2024-03-01T12:00:00.250Z"


@pytest.mark.parametrize(
    ("condition", "last_failure", "expected"),
    [
        (
            FailureCondition.RETRY_ATTEMPTS_EXHAUSTED,
            LastFailure.UNHANDLED,
            {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        ),
        (
            FailureCondition.RETRY_ATTEMPTS_EXHAUSTED,
            LastFailure.PARTIAL_BATCH_RESPONSE,
            {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None},
        ),
        (FailureCondition.MAXIMUM_PAYLOAD_SIZE_EXCEEDED, LastFailure.UNHANDLED, None),
    ],
)
def test_response_context_per_condition(
    condition: FailureCondition, last_failure: LastFailure, expected: dict[str, Any] | None
) -> None:
    record = stream_failure_record(_context(condition, last_failure), _kinesis_batch(), b"{}")
    assert record["responseContext"] == expected
    assert record["requestContext"]["condition"] == condition.value


def test_record_age_exceeded_has_no_response_context() -> None:
    record = stream_failure_record(_context(FailureCondition.RECORD_AGE_EXCEEDED), _kinesis_batch(), b"{}")
    assert "responseContext" not in record
    assert list(record) == ["requestContext", "version", "timestamp", "KinesisBatchInfo", "payload"]


def test_payload_can_be_left_out() -> None:
    record = stream_failure_record(
        _context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), _kinesis_batch(), b"{}", include_payload=False
    )
    assert "payload" not in record


def test_a_payload_that_is_not_json_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="invocation payload is not valid JSON"):
        stream_failure_record(_context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), _kinesis_batch(), b"{oops")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: _context_with(timestamp=datetime(2024, 1, 1)),
            "FailureContext.timestamp must be timezone-aware",
        ),
        (lambda: _context_with(approximate_invoke_count=-1), "approximate_invoke_count must be >= 0"),
        (lambda: KafkaPartitionRange("t", 0, 10, 9, 0, 0), "t-0: last_offset 9 is below first_offset 10"),
        (lambda: KafkaBatch(("b:9092",), None, 0, 10, ()), "KafkaBatch.batch_size must be at least 1"),
        (lambda: KafkaBatch(("b:9092",), None, 1, 10, ()), "KafkaBatch.partitions is empty"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def _context_with(**changes: Any) -> FailureContext:
    fields: dict[str, Any] = {
        "request_id": "r",
        "function_arn": FUNCTION_ARN,
        "condition": FailureCondition.RETRY_ATTEMPTS_EXHAUSTED,
        "approximate_invoke_count": 1,
        "timestamp": WHEN,
    }
    return FailureContext(**(fields | changes))


# Kafka: no recorded fixture; AWS documents the record (Lambda developer guide, "Kafka on-failure
# destinations"). Keys in the documented order, offsets as strings, timestamps ISO with milliseconds.
KAFKA_INFO_KEYS = ["batchSize", "eventSourceArn", "bootstrapServers", "payloadSize", "recordsInfo"]
KAFKA_RANGE_KEYS = ["firstRecordOffset", "lastRecordOffset", "firstRecordTimestamp", "lastRecordTimestamp"]


def test_kafka_record_from_the_events_esm_builds_for_a_self_managed_cluster() -> None:
    entries = [
        event_record("orders", 3, offset, 1_700_000_000_000 + offset, "CREATE_TIME", b"k", b"v", None)
        for offset in (41, 42, 43)
    ]
    entries[-1]["timestamp"] = 1_700_000_000_999
    payload = KafkaEventBuilder(["b1:9092", "b2:9092"]).build("orders-3", entries)
    batch = KafkaBatch.from_event(orjson.loads(payload), payload_size=len(payload))
    context = _context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED)

    record = kafka_failure_record(context, batch, payload)

    assert list(record) == [
        "requestContext",
        "responseContext",
        "version",
        "timestamp",
        "KafkaBatchInfo",
        "payload",
    ]
    info = record["KafkaBatchInfo"]
    assert list(info) == KAFKA_INFO_KEYS
    assert info == {
        "batchSize": 3,
        "eventSourceArn": None,
        "bootstrapServers": "b1:9092,b2:9092",
        "payloadSize": len(payload),
        "recordsInfo": {
            "orders-3": {
                "firstRecordOffset": "41",
                "lastRecordOffset": "43",
                "firstRecordTimestamp": "2023-11-14T22:13:20.041Z",
                "lastRecordTimestamp": "2023-11-14T22:13:20.999Z",
            }
        },
    }
    assert list(info["recordsInfo"]["orders-3"]) == KAFKA_RANGE_KEYS
    assert record["payload"] == orjson.loads(payload)


def test_kafka_record_for_an_msk_event_with_two_partitions() -> None:
    arn = "arn:aws:kafka:us-east-1:111111111111:cluster/sales/abcd1234-ab12-cd34-ef56-9876543210ab-4"

    def entry(partition: int, offset: int, timestamp: int) -> dict[str, Any]:
        return {
            "topic": "mytopic",
            "partition": partition,
            "offset": offset,
            "timestamp": timestamp,
            "timestampType": "CREATE_TIME",
            "value": "eyJrIjoxfQ==",
            "headers": [],
        }

    event = {
        "eventSource": "aws:kafka",
        "eventSourceArn": arn,
        "bootstrapServers": "b-1.sales.kafka.us-east-1.amazonaws.com:9092",
        "records": {
            "mytopic-0": [entry(0, 15, 1_545_084_650_987), entry(0, 16, 1_545_084_651_000)],
            "mytopic-1": [entry(1, 7, 1_545_084_650_100)],
        },
    }
    payload = orjson.dumps(event)
    batch = KafkaBatch.from_event(event, len(payload))
    record = kafka_failure_record(_context(FailureCondition.RECORD_AGE_EXCEEDED), batch, payload)

    info = record["KafkaBatchInfo"]
    assert "responseContext" not in record
    assert (info["batchSize"], info["eventSourceArn"]) == (3, arn)
    assert info["recordsInfo"] == {
        "mytopic-0": {
            "firstRecordOffset": "15",
            "lastRecordOffset": "16",
            "firstRecordTimestamp": "2018-12-17T22:10:50.987Z",
            "lastRecordTimestamp": "2018-12-17T22:10:51.000Z",
        },
        "mytopic-1": {
            "firstRecordOffset": "7",
            "lastRecordOffset": "7",
            "firstRecordTimestamp": "2018-12-17T22:10:50.100Z",
            "lastRecordTimestamp": "2018-12-17T22:10:50.100Z",
        },
    }
    for ranges in info["recordsInfo"].values():
        assert all(_ISO_MILLIS.fullmatch(ranges[key]) for key in KAFKA_RANGE_KEYS[2:])


@pytest.mark.parametrize("timestamp_ms", [-1, 2**62, 2**63 - 1], ids=["none", "2^62", "max"])
def test_kafka_record_with_no_writable_timestamp_writes_null(timestamp_ms: int) -> None:
    """A producer may set any 64-bit timestamp; one past year 9999 must not stop the record
    from being written (issue 10, item 2)."""
    batch = KafkaBatch(
        bootstrap_servers=("b:9092",),
        event_source_arn=None,
        batch_size=1,
        payload_size=2,
        partitions=(KafkaPartitionRange("t", 0, 5, 5, timestamp_ms, timestamp_ms),),
    )
    info = kafka_failure_record(_context(FailureCondition.RETRY_ATTEMPTS_EXHAUSTED), batch, b"{}")[
        "KafkaBatchInfo"
    ]
    assert info["recordsInfo"]["t-0"]["firstRecordTimestamp"] is None


def test_an_unreadable_record_is_written_with_a_null_response_context() -> None:
    """esm's own RecordUnreadable: the function never saw the record, as with an oversized one."""
    entry = {"kinesis": {"sequenceNumber": "101"}, "esm:unreadable": "Data must be bytes, got str"}
    payload = orjson.dumps({"Records": [entry]})
    record = stream_failure_record(_context(FailureCondition.RECORD_UNREADABLE), _kinesis_batch(), payload)
    assert record["requestContext"]["condition"] == "RecordUnreadable"
    assert record["responseContext"] is None
    assert record["payload"] == {"Records": [entry]}  # the entry says why


def test_an_event_without_records_cannot_describe_a_batch() -> None:
    with pytest.raises(ValueError, match="`records` is missing or empty"):
        KafkaBatch.from_event({"eventSource": "SelfManagedKafka", "records": {}}, 10)


def test_an_entry_without_an_offset_is_named() -> None:
    event = {"records": {"t-0": [{"topic": "t", "partition": 0, "timestamp": 1}]}}
    with pytest.raises(ValueError, match=r"records\['t-0'\] needs topic, partition, offset and timestamp"):
        KafkaBatch.from_event(event, 10)


def test_the_last_function_error_follows_the_response_context_as_an_esm_extension() -> None:
    message = "RequestId: r Error: Runtime exited with error: signal: killed"
    error = FunctionError("Runtime.OutOfMemory", message)
    record = stream_failure_record(_context_with(last_error=error), _kinesis_batch(), b"{}")
    assert list(record)[:3] == ["requestContext", "responseContext", "esm"]
    assert record["esm"] == {
        "lastFunctionError": {"errorType": "Runtime.OutOfMemory", "errorMessage": message}
    }
    assert record["responseContext"]["functionError"] == "Unhandled"


def test_no_esm_extension_without_a_function_error() -> None:
    record = stream_failure_record(_context_with(), _kinesis_batch(), b"{}")
    assert "esm" not in record
