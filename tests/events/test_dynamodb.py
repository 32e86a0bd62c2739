"""DynamoDB Streams events against what AWS Lambda delivered (tests/fixtures/aws-recorded)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
    StreamViewType,
)
from aws_recorded import FIXTURES, in_delivery_order, recorded_records

from esm.events.dynamodb import DynamoDBEventBuilder, estimated_entry_size, event_record
from esm.events.unreadable import unreadable_reason

FIXTURE = FIXTURES / "dynamodbstreams-esm.snapshot.json"
CREATED_PLACEHOLDER = "<approximate-creation-datetime>"
STREAM_ARN = "arn:aws:dynamodb:eu-west-1:111111111111:table/orders/stream/2024-01-01T00:00:00.000"
CREATED = datetime(2016, 11, 18, 20, 9, 0, tzinfo=UTC)  # 1479499740


def boto3_record(
    event_name: str,
    stream_record: dict[str, Any],
    event_id: str = "c4ca4238a0b923820dcc509a6f75849b",
) -> dict[str, Any]:
    """A record as boto3's low-level `dynamodbstreams.get_records` returns it."""
    return {
        "eventID": event_id,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {"ApproximateCreationDateTime": CREATED, "SequenceNumber": "100", **stream_record},
    }


MODIFY = boto3_record(
    "MODIFY",
    {
        "Keys": {"id": {"N": "101"}},
        "NewImage": {
            "id": {"N": "101"},
            "message": {"S": "new"},
            "blob": {"B": b"\x00\x01binary"},
            "tags": {"SS": ["a", "b"]},
            "nested": {"M": {"parts": {"L": [{"B": b"in-list"}, {"NULL": True}]}, "flag": {"BOOL": False}}},
            "blobs": {"BS": [b"one", b"two"]},
        },
        "OldImage": {"id": {"N": "101"}, "message": {"S": "old"}},
        "SequenceNumber": "222",
        "SizeBytes": 59,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
)


def as_boto3_value(value: dict[str, Any]) -> dict[str, Any]:
    """A wire attribute value as boto3 parses it: binaries become bytes."""
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {kind: base64.b64decode(inner)}
    if kind == "BS":
        return {kind: [base64.b64decode(item) for item in inner]}
    if kind == "M":
        return {kind: {name: as_boto3_value(item) for name, item in inner.items()}}
    if kind == "L":
        return {kind: [as_boto3_value(item) for item in inner]}
    return {kind: inner}


def rebuilt(recorded: dict[str, Any]) -> dict[str, Any]:
    """esm's entry for the boto3 record behind a recorded one, as the function would parse it."""
    stream_record = dict(recorded["dynamodb"])
    stream_record["ApproximateCreationDateTime"] = CREATED
    for image in ("Keys", "NewImage", "OldImage"):
        if image in stream_record:
            stream_record[image] = {
                name: as_boto3_value(value) for name, value in stream_record[image].items()
            }
    record = {name: value for name, value in recorded.items() if name not in ("dynamodb", "eventSourceARN")}
    record["dynamodb"] = stream_record
    entry = event_record(record, recorded["eventSourceARN"])
    parsed: dict[str, Any] = orjson.loads(DynamoDBEventBuilder().build([entry]))["Records"][0]
    return parsed


RECORDED = recorded_records(FIXTURE)


def test_the_fixture_holds_records_in_both_key_orders_and_a_binary() -> None:
    assert len(RECORDED) > 50
    assert any(in_delivery_order(record) for record in RECORDED)
    assert any("B" in value for record in RECORDED for value in record["dynamodb"]["NewImage"].values())


@pytest.mark.parametrize("index", range(len(RECORDED)))
def test_entry_matches_the_recorded_record(index: int) -> None:
    recorded = RECORDED[index]
    ours = rebuilt(recorded)

    assert ours["dynamodb"]["ApproximateCreationDateTime"] == 1479499740
    assert recorded["dynamodb"]["ApproximateCreationDateTime"] == CREATED_PLACEHOLDER
    ours["dynamodb"]["ApproximateCreationDateTime"] = CREATED_PLACEHOLDER
    assert ours == recorded
    if in_delivery_order(recorded):
        assert list(ours) == list(recorded)
        assert list(ours["dynamodb"]) == list(recorded["dynamodb"])
        for image in ("Keys", "NewImage", "OldImage"):
            assert list(ours["dynamodb"].get(image, {})) == list(recorded["dynamodb"].get(image, {}))


def test_entry_has_lambdas_key_order_and_wire_values() -> None:
    entry = event_record(MODIFY, STREAM_ARN)
    assert list(entry) == [
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    ]
    assert orjson.loads(DynamoDBEventBuilder().build([entry]))["Records"][0] == {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1479499740,
            "Keys": {"id": {"N": "101"}},
            "NewImage": {
                "id": {"N": "101"},
                "message": {"S": "new"},
                "blob": {"B": "AAFiaW5hcnk="},
                "tags": {"SS": ["a", "b"]},
                "nested": {
                    "M": {"parts": {"L": [{"B": "aW4tbGlzdA=="}, {"NULL": True}]}, "flag": {"BOOL": False}}
                },
                "blobs": {"BS": ["b25l", "dHdv"]},
            },
            "OldImage": {"id": {"N": "101"}, "message": {"S": "old"}},
            "SequenceNumber": "222",
            "SizeBytes": 59,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": STREAM_ARN,
    }


def test_creation_time_is_an_integer_for_whole_seconds_else_a_float() -> None:
    whole = event_record(MODIFY, STREAM_ARN)["dynamodb"]["ApproximateCreationDateTime"]
    assert type(whole) is int
    fractional = boto3_record("INSERT", {"Keys": {"id": {"N": "1"}}})
    fractional["dynamodb"]["ApproximateCreationDateTime"] = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert event_record(fractional, STREAM_ARN)["dynamodb"]["ApproximateCreationDateTime"] == 1704164645.678
    as_number = boto3_record("INSERT", {"Keys": {"id": {"N": "1"}}})
    as_number["dynamodb"]["ApproximateCreationDateTime"] = 1704164645.0
    assert type(event_record(as_number, STREAM_ARN)["dynamodb"]["ApproximateCreationDateTime"]) is int


def test_ttl_deletion_carries_lambdas_user_identity() -> None:
    record = boto3_record(
        "REMOVE",
        {"Keys": {"id": {"N": "7"}}, "SequenceNumber": "9", "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"},
    )
    record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    entry = event_record(record, STREAM_ARN)
    assert entry["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert list(entry)[-2:] == ["userIdentity", "eventSourceARN"]
    assert "NewImage" not in entry["dynamodb"] and "OldImage" not in entry["dynamodb"]


def test_powertools_reads_the_event() -> None:
    insert = boto3_record(
        "INSERT",
        {
            "Keys": {"id": {"S": "a"}},
            "NewImage": {"id": {"S": "a"}, "count": {"N": "3"}},
            "SequenceNumber": "111",
            "SizeBytes": 20,
            "StreamViewType": "NEW_IMAGE",
        },
    )
    entries = [event_record(insert, STREAM_ARN), event_record(MODIFY, STREAM_ARN)]
    event = DynamoDBStreamEvent(orjson.loads(DynamoDBEventBuilder().build(entries)))
    first, second = list(event.records)
    assert first.event_name == DynamoDBRecordEventName.INSERT
    assert first.event_source_arn == STREAM_ARN
    assert first.dynamodb is not None and second.dynamodb is not None
    assert first.dynamodb.keys == {"id": "a"}
    assert first.dynamodb.new_image == {"id": "a", "count": Decimal(3)}
    assert first.dynamodb.old_image == {}
    assert first.dynamodb.sequence_number == "111"
    assert first.dynamodb.approximate_creation_date_time == 1479499740
    assert second.event_name == DynamoDBRecordEventName.MODIFY
    assert second.dynamodb.stream_view_type == StreamViewType.NEW_AND_OLD_IMAGES
    assert second.dynamodb.old_image == {"id": Decimal(101), "message": "old"}
    assert second.dynamodb.new_image["message"] == "new"
    assert base64.b64decode(second.dynamodb.new_image["blob"]) == b"\x00\x01binary"
    assert second.dynamodb.size_bytes == 59


def test_missing_stream_record_names_the_record() -> None:
    record = boto3_record("INSERT", {})
    del record["dynamodb"]
    with pytest.raises(
        ValueError, match=r"'c4ca4238a0b923820dcc509a6f75849b' of arn:aws:dynamodb:.*: dynamodb must"
    ):
        event_record(record, STREAM_ARN)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"ApproximateCreationDateTime": "yesterday"}, "ApproximateCreationDateTime must be a datetime"),
        ({"NewImage": ["not", "a", "mapping"]}, "NewImage must be a mapping, got list"),
        ({"NewImage": {"a": "x"}}, "NewImage.a must be an attribute value mapping, got str"),
        ({"NewImage": {"a": {"B": 7}}}, "NewImage.a holds a binary that is int, not bytes"),
        ({"NewImage": {"a": {"L": {"S": "x"}}}}, "NewImage.a must hold a list, got dict"),
    ],
)
def test_a_malformed_record_becomes_an_unreadable_entry_that_keeps_its_place(
    change: dict[str, Any], problem: str
) -> None:
    """A record the reader cannot decode affects only itself (issue 10, item 2): its entry holds
    what places it in the shard, and why it could not be read."""
    record = boto3_record("INSERT", {"Keys": {"id": {"S": "k1"}}, **change})
    entry = event_record(record, STREAM_ARN, read_at=1700000000.5)
    reason = unreadable_reason(entry)
    assert reason is not None and reason.startswith(
        f"DynamoDB stream record 'c4ca4238a0b923820dcc509a6f75849b' of {STREAM_ARN}: {problem}"
    )
    assert entry["dynamodb"]["SequenceNumber"] == "100"
    assert entry["dynamodb"]["Keys"] == {"id": {"S": "k1"}}
    assert entry["eventSourceARN"] == STREAM_ARN
    created = entry["dynamodb"]["ApproximateCreationDateTime"]
    assert created == (1700000000.5 if "ApproximateCreationDateTime" in change else 1479499740)
    assert orjson.loads(orjson.dumps(entry)) == entry  # it can be written to a destination


def test_a_string_with_unpaired_surrogates_is_delivered_with_replacements() -> None:
    record = boto3_record("INSERT", {"NewImage": {"t\udc80": {"S": "a\ud800b"}, "s": {"SS": ["\udfff"]}}})
    entry = event_record(record, STREAM_ARN)
    assert unreadable_reason(entry) is None
    assert entry["dynamodb"]["NewImage"] == {"t\ufffd": {"S": "a\ufffdb"}, "s": {"SS": ["\ufffd"]}}
    assert len(orjson.dumps(entry)) <= estimated_entry_size(entry)


def test_size_estimate_is_an_upper_bound_of_the_json() -> None:
    big = boto3_record(
        "INSERT", {"NewImage": {"blob": {"B": bytes(range(256)) * 1500}, "text": {"S": 'é"\n' * 1000}}}
    )
    entries = [event_record(big, STREAM_ARN), event_record(MODIFY, STREAM_ARN)]
    for entry in entries:
        assert len(orjson.dumps(entry)) < estimated_entry_size(entry) < len(orjson.dumps(entry)) * 1.01 + 2
    event = DynamoDBEventBuilder().build(entries)
    assert len(event) <= sum(estimated_entry_size(entry) for entry in entries) + len('{"Records":[]}')
