from __future__ import annotations

from typing import Any

import pytest

from esm.replay.describe import batch_summary, condition_of, record_label


def kafka_record(records_info: dict[str, Any], batch_size: int = 1) -> dict[str, Any]:
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "KafkaBatchInfo": {"batchSize": batch_size, "recordsInfo": records_info},
    }


def test_a_kafka_record_names_its_partition_and_offset() -> None:
    record = kafka_record({"orders-1": {"firstRecordOffset": "50", "lastRecordOffset": "50"}})
    assert record_label(record) == "RetryAttemptsExhausted, Kafka orders-1 offset 50 (1 record)"


def test_a_kafka_record_over_several_partitions_names_each_range() -> None:
    record = kafka_record(
        {
            "orders-0": {"firstRecordOffset": "10", "lastRecordOffset": "19"},
            "orders-3": {"firstRecordOffset": "7", "lastRecordOffset": "8"},
        },
        batch_size=12,
    )
    assert batch_summary(record) == "Kafka orders-0 offsets 10-19; orders-3 offsets 7-8 (12 records)"


@pytest.mark.parametrize(
    ("key", "source"), [("KinesisBatchInfo", "Kinesis"), ("DDBStreamBatchInfo", "DynamoDB Streams")]
)
def test_a_stream_record_names_its_shard_and_sequence_numbers(key: str, source: str) -> None:
    record = {
        "requestContext": {"condition": "RecordAgeExceeded"},
        key: {
            "shardId": "shardId-000",
            "startSequenceNumber": "49",
            "endSequenceNumber": "51",
            "batchSize": 3,
        },
    }
    assert (
        record_label(record)
        == f"RecordAgeExceeded, {source} shard shardId-000 sequence numbers 49-51 (3 records)"
    )


@pytest.mark.parametrize(
    "record",
    [{}, {"requestContext": None, "KafkaBatchInfo": "oops"}, {"requestContext": {"condition": ""}}],
)
def test_a_malformed_record_gets_placeholders_not_an_exception(record: dict[str, Any]) -> None:
    assert condition_of(record) == "unknown condition"
    assert batch_summary(record) == "no batch info"


def test_odd_kafka_fields_are_shown_as_unknown() -> None:
    record = {"KafkaBatchInfo": {"recordsInfo": {"t-0": None}, "batchSize": "many"}}
    assert batch_summary(record) == "Kafka t-0 offsets unknown"
    assert batch_summary({"KafkaBatchInfo": {}}) == "Kafka no partitions listed"
