"""Views per source: Kafka entries (JSON, plain-text, null and undecodable values, metadata),
Kinesis and DynamoDB records, run end to end through compiled patterns."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from esm.events.kafka import event_record
from esm.filtering import (
    UNDECODABLE,
    NotJsonText,
    compile_filters,
    decode_data,
    dynamodb_filter_view,
    kafka_filter_view,
    kinesis_filter_view,
)


def kafka_entry(value: bytes | None, key: bytes | None = None) -> dict[str, Any]:
    return event_record("orders", 3, 15, 1545084650987, "CREATE_TIME", key, value, [("trace", b"\x01\x02")])


JSON_ENTRY = kafka_entry(b'{"device_ID": "AB1234", "session": {"duration": 162}}', key=b'{"region": "eu"}')
TEXT_ENTRY = kafka_entry(b"Hello, this is a test.", key=b"plain-key")
NULL_ENTRY = kafka_entry(None)
BINARY_ENTRY = kafka_entry(b"\xff\xfe\x00")

KAFKA_ROWS: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # JSON value: fields inside it
    (JSON_ENTRY, {"value": {"device_ID": [{"prefix": "AB"}]}}, True),
    (JSON_ENTRY, {"value": {"session": {"duration": [{"numeric": [">", 100]}]}}}, True),
    (JSON_ENTRY, {"value": {"device_ID": ["CD1234"]}}, False),
    (JSON_ENTRY, {"value": [{"prefix": "{"}]}, False),  # JSON data is not matched as its text
    (JSON_ENTRY, {"key": {"region": ["eu"]}}, True),
    # plain-text value: string matchers on the decoded text; any look inside drops the record
    (TEXT_ENTRY, {"value": ["Hello, this is a test."]}, True),
    (TEXT_ENTRY, {"value": [{"prefix": "Hello"}]}, True),
    (TEXT_ENTRY, {"value": [{"suffix": "test."}]}, True),
    (TEXT_ENTRY, {"value": [{"prefix": "Bye"}]}, False),
    (TEXT_ENTRY, {"value": {"x": ["Hello"]}}, False),
    (TEXT_ENTRY, {"value": {"x": [{"exists": False}]}}, False),
    (TEXT_ENTRY, {"key": ["plain-key"]}, True),
    # null value (tombstone): JSON null
    (NULL_ENTRY, {"value": [None]}, True),
    (NULL_ENTRY, {"value": [{"exists": True}]}, True),
    (NULL_ENTRY, {"value": {"x": ["a"]}}, False),
    # no key: the field is absent
    (NULL_ENTRY, {"key": [{"exists": False}]}, True),
    (NULL_ENTRY, {"key": [None]}, False),
    # not UTF-8: present, equal to nothing, nothing inside
    (BINARY_ENTRY, {"value": [{"exists": True}]}, True),
    (BINARY_ENTRY, {"value": [{"prefix": ""}]}, False),
    (BINARY_ENTRY, {"value": {"x": [{"exists": False}]}}, False),
    # metadata fields, as the event carries them
    (TEXT_ENTRY, {"topic": ["orders"], "partition": [3]}, True),
    (TEXT_ENTRY, {"partition": ["3"]}, False),
    (TEXT_ENTRY, {"offset": [{"numeric": [">=", 15]}], "timestampType": ["CREATE_TIME"]}, True),
    (TEXT_ENTRY, {"timestamp": [{"numeric": ["<", 1545084650987]}]}, False),
    (TEXT_ENTRY, {"headers": {"trace": [1]}}, True),
]


@pytest.mark.parametrize(("entry", "pattern", "expected"), KAFKA_ROWS)
def test_kafka_entry(entry: dict[str, Any], pattern: dict[str, Any], expected: bool) -> None:
    assert compile_filters([pattern]).matches(kafka_filter_view(entry)) is expected


def test_kafka_view_decodes_key_and_value_and_leaves_the_entry_alone() -> None:
    entry = copy.deepcopy(JSON_ENTRY)
    view = kafka_filter_view(entry)
    assert view["value"] == {"device_ID": "AB1234", "session": {"duration": 162}}
    assert view["key"] == {"region": "eu"}
    assert view["topic"] == "orders" and view["headers"] == [{"trace": [1, 2]}]
    assert entry == JSON_ENTRY
    assert type(kafka_filter_view(TEXT_ENTRY)["value"]) is NotJsonText
    assert kafka_filter_view(BINARY_ENTRY)["value"] is UNDECODABLE
    assert "key" not in kafka_filter_view(NULL_ENTRY)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"42", 42),
        (b'"hi"', "hi"),
        (b"[1, 2]", [1, 2]),
        (b"", NotJsonText("")),
        (b"{oops", NotJsonText("{oops")),
    ],
)
def test_decode_data(raw: bytes, decoded: Any) -> None:
    result = decode_data(base64.b64encode(raw).decode())
    assert result == decoded
    assert type(result) is type(decoded)


# The Kinesis record of AWS's filtering page (its data is this JSON, base64).
DOC_DATA = b'{"RecordNumber": "0001", "TimeStamp": "yyyy-mm-ddThh:mm:ss", "RequestCode": "AAAA"}'
KINESIS_RECORD: dict[str, Any] = {
    "kinesis": {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "1",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "data": "eyJSZWNvcmROdW1iZXIiOiAiMDAwMSIsICJUaW1lU3RhbXAiOiAieXl5eS1tbS1kZFRoaDptbTpzcyIsICJSZXF1ZXN0"
        "Q29kZSI6ICJBQUFBIn0=",
        "approximateArrivalTimestamp": 1545084650.987,
    },
    "eventSource": "aws:kinesis",
    "eventVersion": "1.0",
    "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
    "eventName": "aws:kinesis:record",
    "awsRegion": "us-east-2",
    "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
}


def test_documented_kinesis_data_is_the_documented_json() -> None:
    assert base64.b64decode(KINESIS_RECORD["kinesis"]["data"]) == DOC_DATA


def kinesis_with_data(data: bytes) -> dict[str, Any]:
    record = copy.deepcopy(KINESIS_RECORD)
    record["kinesis"]["data"] = base64.b64encode(data).decode()
    return record


KINESIS_ROWS: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    (KINESIS_RECORD, {"data": {"RequestCode": ["AAAA"]}}, True),
    (KINESIS_RECORD, {"data": {"RequestCode": ["BBBB"]}}, False),
    (KINESIS_RECORD, {"partitionKey": ["1"], "data": {"RecordNumber": ["0001"]}}, True),
    (KINESIS_RECORD, {"partitionKey": ["2"], "data": {"RecordNumber": ["0001"]}}, False),
    (KINESIS_RECORD, {"eventName": ["aws:kinesis:record"], "awsRegion": [{"prefix": "us-"}]}, True),
    # AWS-recorded scenario test_kinesis_event_filtering_json_pattern
    (
        kinesis_with_data(b'{"event_type": "function_1", "message": "foo"}'),
        {"data": {"event_type": ["function_1"]}},
        True,
    ),
    (
        kinesis_with_data(b'{"event_type": "function_1", "message": "foo"}'),
        {"data": {"event_type": ["function_2"]}},
        False,
    ),
    # non-JSON data: a data pattern drops it; metadata-only patterns still apply
    (kinesis_with_data(b"not json"), {"data": {"event_type": [{"exists": False}]}}, False),
    (kinesis_with_data(b"not json"), {"partitionKey": ["1"]}, True),
]


@pytest.mark.parametrize(("record", "pattern", "expected"), KINESIS_ROWS)
def test_kinesis_record(record: dict[str, Any], pattern: dict[str, Any], expected: bool) -> None:
    record_filter = compile_filters([pattern], json_fields=("data",))
    assert record_filter.matches(kinesis_filter_view(record)) is expected


def test_kinesis_view_lifts_the_kinesis_fields() -> None:
    view = kinesis_filter_view(KINESIS_RECORD)
    assert view["data"] == {"RecordNumber": "0001", "TimeStamp": "yyyy-mm-ddThh:mm:ss", "RequestCode": "AAAA"}
    assert view["partitionKey"] == "1" and view["eventSource"] == "aws:kinesis"
    assert "kinesis" not in view
    assert isinstance(KINESIS_RECORD["kinesis"]["data"], str)  # the record itself is untouched


def dynamodb_record(event_name: str, new_image: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventID": "1",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"id": {"S": "id_value_1"}},
            "NewImage": new_image,
            "SequenceNumber": "111",
            "SizeBytes": 46,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s",
    }


ID = {"id": {"S": "id_value_1"}}

# Patterns of the AWS-recorded test_dynamodb_event_filter scenarios; the kept rows are records AWS delivered.
DYNAMODB_ROWS: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"eventName": ["INSERT"]}, dynamodb_record("INSERT", ID), True),
    ({"eventName": ["INSERT"]}, dynamodb_record("MODIFY", ID), False),
    ({"eventName": ["INSERT", "MODIFY"]}, dynamodb_record("MODIFY", ID), True),
    ({"eventName": ["INSERT"], "eventSource": ["aws:dynamodb"]}, dynamodb_record("INSERT", ID), True),
    (
        {"dynamodb": {"NewImage": {"presentKey": {"S": ["presentValue"]}}}},
        dynamodb_record("INSERT", {**ID, "presentKey": {"S": "presentValue"}}),
        True,
    ),
    (
        {"dynamodb": {"NewImage": {"presentKey": {"S": ["presentValue"]}}}},
        dynamodb_record("INSERT", ID),
        False,
    ),
    (
        {"dynamodb": {"NewImage": {"presentKey": {"S": [{"exists": True}]}}}},
        dynamodb_record("INSERT", {**ID, "presentKey": {"S": "presentValue"}}),
        True,
    ),
    (
        {"dynamodb": {"NewImage": {"presentKey": {"S": [{"exists": True}]}}}},
        dynamodb_record("INSERT", ID),
        False,
    ),
    # exists: false on a field holding a typed attribute object: AWS delivered both records
    ({"dynamodb": {"NewImage": {"presentKey": [{"exists": False}]}}}, dynamodb_record("INSERT", ID), True),
    (
        {"dynamodb": {"NewImage": {"presentKey": [{"exists": False}]}}},
        dynamodb_record("INSERT", {**ID, "presentKey": {"S": "presentValue"}}),
        True,
    ),
    (
        {
            "dynamodb": {
                "NewImage": {"numericFilter": {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}}
            }
        },
        dynamodb_record("INSERT", {**ID, "numericFilter": {"N": "42"}}),
        True,
    ),
    (
        {
            "dynamodb": {
                "NewImage": {"numericFilter": {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}}
            }
        },
        dynamodb_record("INSERT", {**ID, "numericFilter": {"N": "101"}}),
        False,
    ),
    (
        {"dynamodb": {"NewImage": {"prefix": {"S": [{"prefix": "us-1"}]}}}},
        dynamodb_record("INSERT", {**ID, "prefix": {"S": "us-1-other-suffix"}}),
        True,
    ),
    (
        {"dynamodb": {"NewImage": {"prefix": {"S": [{"prefix": "us-1"}]}}}},
        dynamodb_record("INSERT", {**ID, "prefix": {"S": "us-2-other-suffix"}}),
        False,
    ),
]


@pytest.mark.parametrize(("pattern", "record", "expected"), DYNAMODB_ROWS)
def test_dynamodb_record(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    record_filter = compile_filters([pattern], json_fields=("dynamodb",))
    assert record_filter.matches(dynamodb_filter_view(record)) is expected


def test_kafka_filter_over_a_whole_batch() -> None:
    """The use the poller makes: keep the entries any pattern matches, in order."""
    entries = [
        kafka_entry(orjson.dumps({"status": status, "total": total}))
        for status, total in [("paid", 10), ("refunded", 500), ("paid", 300), ("pending", 1)]
    ]
    entries.append(TEXT_ENTRY)
    record_filter = compile_filters(
        [{"value": {"status": ["refunded"]}}, {"value": {"total": [{"numeric": [">=", 300]}]}}]
    )
    kept = [entry for entry in entries if record_filter.matches(kafka_filter_view(entry))]
    assert [decode_data(entry["value"]) for entry in kept] == [
        {"status": "refunded", "total": 500},
        {"status": "paid", "total": 300},
    ]
