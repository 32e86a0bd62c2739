"""Lambda's failure semantics end to end on a real broker: poison records, bisect, retry limits,
on-failure destinations of each kind, partial batch responses and filters."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from esm.destinations import read_records
from esm.embedded.topics import OutgoingRecord, committed_offsets, produce

from .harness import Worker, daemon, mapping, recorded, wait_committed, write_config

POISON = b"poison"


def produce_with_poison(
    bootstrap: str, topic: str, n: int, poison_at: int, partitions: int = 2
) -> set[bytes]:
    values = [POISON if i == poison_at else f"r{i}".encode() for i in range(n)]
    produce(
        bootstrap, topic, [OutgoingRecord(value=v, partition=i % partitions) for i, v in enumerate(values)]
    )
    return {v for v in values if v != POISON}


def function(worker: Worker) -> dict[str, object]:
    return {"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30}


def read_all(uri: str, source_bootstrap: str | None = None) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        servers = [source_bootstrap] if source_bootstrap else None
        return [record async for record in read_records(uri, servers)]

    return asyncio.run(collect())


@pytest.mark.parametrize("kind", ["file", "redis", "kafka"])
def test_poison_record_lands_in_the_destination_and_everything_else_is_delivered(
    kafka_broker: str, new_topic: Callable[..., str], redis_url: str, tmp_path: Path, kind: str
) -> None:
    topic = new_topic(partitions=2)
    good = produce_with_poison(kafka_broker, topic, 400, poison_at=101)  # partition 1, offset 50
    destination = {
        "file": f"file://{tmp_path / 'failures.jsonl'}",
        "redis": f"redis://127.0.0.1:6379/0?stream={redis_url.split('prefix=')[1]}-failures",
        "kafka": f"kafka://{new_topic(partitions=1)}",
    }[kind]
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.recorder:handler",
        concurrency=2,
        env={"ESM_RECORDER_FILE": str(out), "ESM_RECORDER_FAIL_VALUE": POISON.decode()},
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                BatchSize=64,
                BisectBatchOnFunctionError=True,
                MaximumRetryAttempts=1,
                MaximumRetryBackoffInSeconds=1,
                DestinationConfig={"OnFailure": {"Destination": destination}},
            )
        ],
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 400)
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert good <= {d.value for d in recorded(out)}  # every good record delivered
    try:
        [failure] = read_all(destination, kafka_broker)
    finally:
        if kind == "redis":
            redis.Redis().delete(destination.split("stream=")[1])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] >= 2
    assert failure["requestContext"]["functionArn"].endswith(":function:fn")
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert failure["version"] == "1.0"
    info = failure["KafkaBatchInfo"]
    assert info["batchSize"] == 1
    assert info["bootstrapServers"] == kafka_broker
    assert info["recordsInfo"] == {
        f"{topic}-1": {
            "firstRecordOffset": "50",
            "lastRecordOffset": "50",
            "firstRecordTimestamp": info["recordsInfo"][f"{topic}-1"]["firstRecordTimestamp"],
            "lastRecordTimestamp": info["recordsInfo"][f"{topic}-1"]["lastRecordTimestamp"],
        }
    }
    [payload_record] = failure["payload"]["records"][f"{topic}-1"]
    assert base64.b64decode(payload_record["value"]) == POISON
    assert payload_record["offset"] == 50


def test_partial_batch_response_from_a_powertools_batch_processor(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    values = [f"v{i}".encode() for i in range(20)]
    produce(kafka_broker, topic, [OutgoingRecord(value=v, partition=0) for v in values])
    out = tmp_path / "seen.jsonl"
    worker = Worker(
        "tests.handlers.powertools_partial:handler",
        env={"ESM_RECORDER_FILE": str(out), "ESM_RECORDER_FAIL_VALUE": "v12"},
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                BatchSize=20,
                FunctionResponseTypes=["ReportBatchItemFailures"],
                MaximumRetryAttempts=2,
                MaximumRetryBackoffInSeconds=1,
                DestinationConfig={"OnFailure": {"Destination": f"file://{tmp_path / 'failed.jsonl'}"}},
            )
        ],
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 20)
    finally:
        engine.stop()
        worker.stop()
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    # first invocation: all 20; then twice from the failed record on, never the head again
    assert [s["offset"] for s in seen] == list(range(20)) + list(range(12, 20)) * 2
    [failure] = read_all(f"file://{tmp_path / 'failed.jsonl'}")
    assert failure["responseContext"]["functionError"] is None  # a partial batch response, as AWS writes
    assert failure["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "12"
    assert failure["KafkaBatchInfo"]["batchSize"] == 8
    assert failure["requestContext"]["approximateInvokeCount"] == 3


def test_filters_on_kafka_json_values(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    orders = [{"kind": "order", "amount": i} for i in range(30)] + [{"kind": "ping"}] * 10 + ["not json"]
    produce(
        kafka_broker,
        topic,
        [
            OutgoingRecord(value=(o if isinstance(o, str) else json.dumps(o)).encode(), partition=i % 2)
            for i, o in enumerate(orders)
        ],
    )
    out = tmp_path / "events.jsonl"
    worker = Worker("tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(out)}).wait_serving()
    pattern = {"value": {"kind": ["order"], "amount": [{"numeric": [">=", 10, "<", 20]}]}}
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
            )
        ],
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, len(orders))  # filtered records are passed too
    finally:
        engine.stop()
        worker.stop()
    amounts = sorted(json.loads(d.value)["amount"] for d in recorded(out))
    assert amounts == list(range(10, 20))
    assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {0: 21, 1: 20}


def test_a_destination_that_fails_holds_the_partition_until_it_recovers(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    produce_with_poison(kafka_broker, topic, 20, poison_at=5, partitions=1)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the destination's directory should be")
    target = blocker / "failures.jsonl"
    worker = Worker(
        "tests.handlers.recorder:handler",
        env={"ESM_RECORDER_FILE": str(tmp_path / "e.jsonl"), "ESM_RECORDER_FAIL_VALUE": "poison"},
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                BatchSize=1,
                MaximumRetryAttempts=0,
                DestinationConfig={"OnFailure": {"Destination": f"file://{target}"}},
            )
        ],
    )
    engine = daemon(config)
    try:
        engine.wait_for_line(r"on-failure destination failed")
        wait_committed(kafka_broker, f"g-{topic}", topic, 5)
        assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {0: 5}  # held at the poison record
        blocker.unlink()  # the destination recovers
        blocker.mkdir()
        wait_committed(kafka_broker, f"g-{topic}", topic, 20)
    finally:
        engine.stop()
        worker.stop()
    [failure] = read_all(f"file://{target}")
    assert failure["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "5"


def test_records_older_than_the_maximum_age_go_to_the_destination_uninvoked(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    old = 1_600_000_000_000  # 2020: far past MaximumRecordAgeInSeconds
    produce(
        kafka_broker,
        topic,
        [OutgoingRecord(value=f"old{i}".encode(), partition=0, timestamp_ms=old) for i in range(3)],
    )
    produce(kafka_broker, topic, [OutgoingRecord(value=f"new{i}".encode(), partition=0) for i in range(3)])
    out, failed = tmp_path / "e.jsonl", tmp_path / "failed.jsonl"
    worker = Worker("tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(out)}).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                BatchSize=3,
                MaximumRecordAgeInSeconds=60,
                DestinationConfig={"OnFailure": {"Destination": f"file://{failed}"}},
            )
        ],
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 6)
    finally:
        engine.stop()
        worker.stop()
    assert sorted(d.value for d in recorded(out)) == [b"new0", b"new1", b"new2"]
    [failure] = read_all(f"file://{failed}")
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failure["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in failure
    assert failure["KafkaBatchInfo"]["batchSize"] == 3


def test_a_disabled_mapping_does_not_poll(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, [OutgoingRecord(value=b"x", partition=0)])
    config = write_config(
        tmp_path / "esm.json",
        [{"FunctionName": "fn", "Endpoints": ["127.0.0.1:1"]}],
        [mapping(kafka_broker, topic, f"g-{topic}", Enabled=False)],
    )
    engine = daemon(config)
    try:
        engine.wait_for_line(r"is disabled; not polling")
    finally:
        assert engine.stop() == 0
    assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {}
