"""Kinesis events against what AWS Lambda delivered (tests/fixtures/aws-recorded)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_recorded import FIXTURES, in_delivery_order, recorded_records

from esm.events.kinesis import KinesisEventBuilder, KinesisShardOrigin, estimated_entry_size, event_record
from esm.events.unreadable import unreadable_reason

FIXTURE = FIXTURES / "kinesis-esm.snapshot.json"
ARRIVAL_PLACEHOLDER = "<approximate-arrival-timestamp>"

ORIGIN = KinesisShardOrigin(
    stream_arn="arn:aws:kinesis:eu-west-1:111111111111:stream/orders",
    shard_id="shardId-000000000007",
    region="eu-west-1",
    invoke_identity_arn="arn:aws:iam::111111111111:role/esm",
)
ARRIVAL = datetime(2018, 12, 17, 22, 10, 50, 987000, tzinfo=UTC)


def boto3_record(
    sequence_number: str, data: bytes, partition_key: str, arrival: datetime = ARRIVAL
) -> dict[str, Any]:
    return {
        "SequenceNumber": sequence_number,
        "ApproximateArrivalTimestamp": arrival,
        "Data": data,
        "PartitionKey": partition_key,
        "EncryptionType": "NONE",
    }


def rebuilt(recorded: dict[str, Any]) -> dict[str, Any]:
    """esm's entry for the boto3 record behind a recorded one, as the function would parse it."""
    payload = recorded["kinesis"]
    shard_id = recorded["eventID"].split(":", 1)[0]
    origin = KinesisShardOrigin(
        stream_arn=recorded["eventSourceARN"],
        shard_id=shard_id,
        region=recorded["awsRegion"],
        invoke_identity_arn=recorded["invokeIdentityArn"],
    )
    record = boto3_record(
        payload["sequenceNumber"], base64.b64decode(payload["data"]), payload["partitionKey"]
    )
    entry = event_record(record, origin)
    parsed: dict[str, Any] = orjson.loads(KinesisEventBuilder().build([entry]))["Records"][0]
    return parsed


RECORDED = recorded_records(FIXTURE)


def test_the_fixture_holds_records_in_both_key_orders() -> None:
    assert len(RECORDED) > 50
    assert any(in_delivery_order(record) for record in RECORDED)


@pytest.mark.parametrize("index", range(len(RECORDED)))
def test_entry_matches_the_recorded_record(index: int) -> None:
    recorded = RECORDED[index]
    ours = rebuilt(recorded)

    assert isinstance(ours["kinesis"]["approximateArrivalTimestamp"], float)
    assert recorded["kinesis"]["approximateArrivalTimestamp"] == ARRIVAL_PLACEHOLDER
    ours["kinesis"]["approximateArrivalTimestamp"] = ARRIVAL_PLACEHOLDER
    assert ours == recorded
    if in_delivery_order(recorded):
        assert list(ours) == list(recorded)
        assert list(ours["kinesis"]) == list(recorded["kinesis"])


def test_entry_has_lambdas_key_order_and_values() -> None:
    entry = event_record(
        boto3_record("49590338271490256608559692538361571095921575989136588898", b"hi", "pk-1"), ORIGIN
    )
    assert orjson.loads(KinesisEventBuilder().build([entry])) == {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "pk-1",
                    "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                    "data": "aGk=",
                    "approximateArrivalTimestamp": 1545084650.987,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": "shardId-000000000007:49590338271490256608559692538361571095921575989136588898",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::111111111111:role/esm",
                "awsRegion": "eu-west-1",
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:111111111111:stream/orders",
            }
        ]
    }
    assert list(entry) == [
        "kinesis",
        "eventSource",
        "eventVersion",
        "eventID",
        "eventName",
        "invokeIdentityArn",
        "awsRegion",
        "eventSourceARN",
    ]


def test_arrival_time_is_seconds_with_milliseconds() -> None:
    arrival = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    entry = event_record(boto3_record("1", b"", "k", arrival), ORIGIN)
    assert entry["kinesis"]["approximateArrivalTimestamp"] == 1704164645.679
    assert entry["kinesis"]["data"] == ""


def test_powertools_reads_the_event() -> None:
    entries = [
        event_record(boto3_record("100", b'{"order": 1}', "customer-1"), ORIGIN),
        event_record(boto3_record("101", b"\x00\xffraw", "customer-2"), ORIGIN),
    ]
    event = KinesisStreamEvent(orjson.loads(KinesisEventBuilder().build(entries)))
    first, second = list(event.records)
    assert first.kinesis.data_as_json() == {"order": 1}
    assert first.kinesis.partition_key == "customer-1"
    assert first.kinesis.sequence_number == "100"
    assert first.kinesis.approximate_arrival_timestamp == 1545084650.987
    assert first.event_id == "shardId-000000000007:100"
    assert first.event_name == "aws:kinesis:record"
    assert first.event_source_arn == ORIGIN.stream_arn
    assert first.invoke_identity_arn == ORIGIN.invoke_identity_arn
    assert first.aws_region == "eu-west-1"
    assert second.kinesis.data_as_bytes() == b"\x00\xffraw"
    assert second.kinesis.sequence_number == "101"


NOT_A_TIME = "ApproximateArrivalTimestamp must be a datetime or epoch seconds"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Data", None, "Data must be bytes or base64 text, got NoneType"),
        ("Data", "not base64!", "Data is not valid base64 (Only base64 data is allowed)"),
        ("PartitionKey", 7, "PartitionKey must be str, got int"),
        ("ApproximateArrivalTimestamp", "soon", f"{NOT_A_TIME}, got str"),
        ("ApproximateArrivalTimestamp", float("nan"), f"{NOT_A_TIME}, got float"),
    ],
)
def test_a_malformed_record_becomes_an_unreadable_entry_that_keeps_its_place(
    field: str, value: object, message: str
) -> None:
    """A record the reader cannot decode affects only itself (issue 10, item 2)."""
    record = boto3_record("42", b"x", "k")
    record[field] = value
    entry = event_record(record, ORIGIN, read_at=1700000000.5)
    assert unreadable_reason(entry) == f"Kinesis record shardId-000000000007:42: {message}"
    kinesis = entry["kinesis"]
    assert kinesis["sequenceNumber"] == "42" and entry["eventID"] == "shardId-000000000007:42"
    assert kinesis["partitionKey"] == ("" if field == "PartitionKey" else "k")
    if field == "ApproximateArrivalTimestamp":
        assert kinesis["approximateArrivalTimestamp"] == 1700000000.5
    assert ("data" in kinesis) is (field != "Data")
    assert estimated_entry_size(entry) >= len(orjson.dumps(entry))


def test_a_partition_key_with_unpaired_surrogates_is_delivered_with_replacements() -> None:
    entry = event_record(boto3_record("42", b"x", "a\ud800b"), ORIGIN)
    assert unreadable_reason(entry) is None
    assert entry["kinesis"]["partitionKey"] == "a\ufffdb"


def test_missing_sequence_number_names_the_shard() -> None:
    record = boto3_record("42", b"x", "k")
    del record["SequenceNumber"]
    with pytest.raises(
        ValueError, match=r"shardId-000000000007 of arn:aws:kinesis:.*: SequenceNumber must be str"
    ):
        event_record(record, ORIGIN)


@pytest.mark.parametrize(
    ("data", "partition_key"),
    [
        (bytes(range(256)) * 4000, "k"),  # ~1 MB, the Kinesis record limit
        (b"", "k"),
        (b"x", '"\\\n\x01' * 64),  # a partition key JSON must escape
        (b"x", "ключ-🙂" * 36),  # multi-byte UTF-8
    ],
)
def test_size_estimate_is_an_upper_bound_of_the_json(data: bytes, partition_key: str) -> None:
    entry = event_record(boto3_record("4" * 56, data, partition_key), ORIGIN)
    one_record_json = orjson.dumps(entry)
    assert len(one_record_json) + 1 <= estimated_entry_size(entry)
    if len(data) > 100_000:
        assert estimated_entry_size(entry) < len(one_record_json) * 1.01


def test_sizes_add_up_to_a_bound_of_the_whole_event() -> None:
    entries = [event_record(boto3_record(str(n), b"y" * n, f"k{n}"), ORIGIN) for n in range(50)]
    event = KinesisEventBuilder().build(entries)
    assert len(event) <= sum(estimated_entry_size(entry) for entry in entries) + len('{"Records":[]}')


@pytest.mark.parametrize("data", [b'{"order": 1}', b"\x00\xffraw", b""])
def test_a_record_as_on_the_wire_makes_the_same_entry_as_boto3s(data: bytes) -> None:
    """The lean GetRecords client hands over Data as base64 text and the arrival as epoch
    seconds, as the JSON API sends them; the entry is the same as from boto3's bytes/datetime."""
    wire = boto3_record("42", data, "k")
    wire["Data"] = base64.b64encode(data).decode()
    wire["ApproximateArrivalTimestamp"] = ARRIVAL.timestamp()
    assert event_record(wire, ORIGIN) == event_record(boto3_record("42", data, "k"), ORIGIN)
