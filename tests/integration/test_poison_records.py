"""One poison record per source in a mapping with several partitions or shards, end to end on the
real services (issue 10, item 2 and its "go further"): the record affects only itself (it is
delivered as Lambda would, or given up to the on-failure destination with a reason, and its
partition moves on) and the healthy partitions deliver exactly what they deliver in a run
without it. The run without it is a second mapping over a clean copy of the source, served by
the same daemon at the same time: delivery counts are compared, never timings.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from raw_header_names import RawName
from stream_services import DynamoDBLocal, KinesisMock, create_table

from esm.destinations import read_records
from esm.embedded.topics import OutgoingRecord, produce

from .harness import Worker, complete_lines, daemon, mapping, wait_committed, wait_until, write_config
from .stream_harness import (
    DeliveredRecord,
    KeyedProducer,
    create_kinesis_stream,
    delivered_records,
    emulator_env,
    first_deliveries,
    function,
    keys,
    kinesis_mapping,
    put_records,
    stream_daemon,
)

HEALTHY_PER_PARTITION = 100
PARTITIONS = 4


POISON = OutgoingRecord(b"poison", b"k", [(RawName(b"\xff\xfeHDR"), b"\x00\xff")], partition=0)


def produce_partitions(bootstrap: str, topic: str, poisoned: bool) -> None:
    """HEALTHY_PER_PARTITION records on each partition; the poison, if any, a quarter in on 0."""
    for n in range(HEALTHY_PER_PARTITION):
        if poisoned and n == HEALTHY_PER_PARTITION // 4:
            produce(bootstrap, topic, [POISON])
        produce(
            bootstrap,
            topic,
            [OutgoingRecord(f"{p}-{n}".encode(), partition=p) for p in range(PARTITIONS)],
        )


def kafka_deliveries(path: Path, topic: str) -> dict[int, list[dict[str, Any]]]:
    """The recorder's Kafka records of `topic`, by partition, in delivery order."""
    out: dict[int, list[dict[str, Any]]] = {}
    for line in complete_lines(path):
        for key, records in json.loads(line)["records"].items():
            if key.rpartition("-")[0] == topic:
                for record in records:
                    out.setdefault(record["partition"], []).append(record)
    return out


def healthy_values(deliveries: dict[int, list[dict[str, Any]]]) -> dict[int, Counter[bytes]]:
    return {
        p: Counter(base64.b64decode(r["value"]) for r in records if r["value"] != "cG9pc29u")
        for p, records in deliveries.items()
    }


def read_destination(uri: str) -> list[Any]:
    async def collect() -> list[Any]:
        return [entry async for entry in read_records(uri)]

    return asyncio.run(collect())


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_a_header_name_that_is_not_utf8_stalls_nothing_but_itself(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path, client: str
) -> None:
    """The probe of issue 10: 4 partitions, one record with header name b"\\xff\\xfeHDR" on partition 0.
    kafka-python delivers it (the name as Java reads it); confluent-kafka cannot read the name,
    so it goes to the destination as RecordUnreadable. Either way every other record of every
    partition is delivered and committed, as in the clean run."""
    poisoned, clean = new_topic(partitions=PARTITIONS), new_topic(partitions=PARTITIONS)
    produce_partitions(kafka_broker, poisoned, poisoned=True)
    produce_partitions(kafka_broker, clean, poisoned=False)
    out, failures = tmp_path / "events.jsonl", tmp_path / "failures.jsonl"
    worker = Worker("tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(out)}).wait_serving()
    destination = {"OnFailure": {"Destination": f"file://{failures}"}}
    mappings = [
        mapping(
            kafka_broker, topic, f"g-{topic}", BatchSize=10, KafkaClient=client, DestinationConfig=destination
        )
        for topic in (poisoned, clean)
    ]
    config = write_config(
        tmp_path / "esm.json", [{"FunctionName": "fn", "Endpoints": [worker.address]}], mappings
    )
    engine = daemon(config)
    total = PARTITIONS * HEALTHY_PER_PARTITION
    try:
        committed = wait_committed(kafka_broker, f"g-{poisoned}", poisoned, total + 1)
        wait_committed(kafka_broker, f"g-{clean}", clean, total)
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert committed == {p: HEALTHY_PER_PARTITION + (p == 0) for p in range(PARTITIONS)}
    assert "reconnecting" not in engine.stderr, engine.stderr[-3000:]
    got = kafka_deliveries(out, poisoned)
    assert healthy_values(got) == healthy_values(kafka_deliveries(out, clean))  # as in the clean run
    delivered_poison = [r for r in got[0] if r["value"] == "cG9pc29u"]
    if client == "kafka-python":
        assert [r["headers"] for r in delivered_poison] == [[{"\ufffd\ufffdHDR": [0, 255]}]]
        assert not failures.exists()
    else:
        assert delivered_poison == []
        [record] = read_destination(f"file://{failures}")
        assert record["requestContext"]["condition"] == "RecordUnreadable"
        assert record["responseContext"] is None
        assert record["KafkaBatchInfo"]["recordsInfo"][f"{poisoned}-0"]["firstRecordOffset"] == "25"
        [entry] = record["payload"]["records"][f"{poisoned}-0"]
        assert (
            base64.b64decode(entry["value"]) == b"poison"
            and "header names are not UTF-8" in entry["esm:unreadable"]
        )


def test_a_kinesis_record_the_function_cannot_read_stalls_only_itself(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    """Data that is not text, on one of 4 shards, to a handler that reads text: with retries
    limited and bisect on, the record alone goes to the destination and its shard moves on; the
    other shards deliver what they deliver from a clean stream."""
    poisoned, clean = (create_kinesis_stream(kinesis_mock, shard_count=4) for _ in range(2))
    ring = keys(16)
    landed = {}
    for stream in (poisoned, clean):
        producer = KeyedProducer(stream, ring)
        producer.put_rounds(5)
        if stream is poisoned:
            [landed["poison"]] = put_records(stream, [(ring[0], b"\xff\xfe not text")])
        producer.put_rounds(5)
        landed[stream.arn] = producer.puts
    out, failures = tmp_path / "events.jsonl", tmp_path / "failures.jsonl"
    worker = Worker(
        "tests.handlers.recorder:handler",
        concurrency=4,
        env={"ESM_RECORDER_FILE": str(out), "ESM_RECORDER_TEXT_ONLY": "1"},
    ).wait_serving()
    overrides: dict[str, Any] = {
        "BatchSize": 10,
        "MaximumRetryAttempts": 1,
        "MaximumRetryBackoffInSeconds": 1,
        "BisectBatchOnFunctionError": True,
        "DestinationConfig": {"OnFailure": {"Destination": f"file://{failures}"}},
    }
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [kinesis_mapping(stream, str(uuid.uuid4()), **overrides) for stream in (poisoned, clean)],
    )
    engine = stream_daemon(config, emulator_env(kinesis_mock))

    def of_stream(stream_arn: str) -> list[DeliveredRecord]:
        """What the function got from one stream (both streams have the same shard ids, and
        their sequence numbers may coincide)."""
        lines = [line for line in complete_lines(out) if f'"eventSourceARN":"{stream_arn}"' in line]
        mine = tmp_path / f"{stream_arn.rpartition('/')[2]}.jsonl"
        mine.write_text("".join(f"{line}\n" for line in lines))
        return delivered_records(mine)

    def all_healthy_delivered() -> bool:
        return all(
            {(p.shard_id, p.sequence_number) for p in landed[stream.arn]}
            <= {(d.shard_id, d.sequence_number) for d in of_stream(stream.arn)}
            for stream in (poisoned, clean)
        )

    try:
        wait_until(
            lambda: all_healthy_delivered() and failures.exists(),
            timeout=90,
            message="every healthy record delivered and the poison written",
        )
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()

    def by_shard(stream_arn: str) -> dict[str, set[bytes]]:
        """The healthy records of the stream delivered, shard by shard (kinesis-mock may store
        a retried put twice, so records are compared as sets of what was put)."""
        names = {(p.shard_id, p.sequence_number) for p in landed[stream_arn]}
        delivered: dict[str, set[bytes]] = {}
        for record in first_deliveries(of_stream(stream_arn)):
            if (record.shard_id, record.sequence_number) in names:
                delivered.setdefault(record.shard_id, set()).add(record.data)
        return delivered

    assert by_shard(poisoned.arn) == by_shard(clean.arn)  # as in the clean run, shard by shard
    assert len(by_shard(clean.arn)) == 4
    [record] = read_destination(f"file://{failures}")
    poison = landed["poison"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = record["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["batchSize"]) == (
        poison.shard_id,
        poison.sequence_number,
        1,
    )


def dynamodb_deliveries(path: Path, stream_arn: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The recorder's DynamoDB records of one stream: per item id, (eventName, NewImage) in order."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for line in complete_lines(path):
        for record in json.loads(line).get("Records", ()):
            if record.get("eventSourceARN") == stream_arn:
                stream_record = record["dynamodb"]
                item = stream_record["Keys"]["id"]["S"]
                out.setdefault(item, []).append((record["eventName"], stream_record.get("NewImage", {})))
    return out


def test_a_dynamodb_string_that_is_not_unicode_stalls_nothing(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    """DynamoDB Local keeps an unpaired surrogate in a string attribute, which no UTF-8 JSON can
    carry (it stopped its shard's reading for good). It is delivered with U+FFFD in its place,
    and every other item's changes arrive as from a clean table (DynamoDB Local has one shard per
    stream: ParallelizationFactor 4 gives it lanes, by item key, instead)."""
    client: Any = dynamodb_local.client()
    poisoned, clean = (create_table(client) for _ in range(2))
    for table in (poisoned, clean):
        for n in range(4):
            for item in range(12):
                text = "bad \ud800 text" if table is poisoned and (n, item) == (1, 0) else f"v{n}"
                client.put_item(
                    TableName=table["TableName"],
                    Item={"id": {"S": f"item-{item}"}, "n": {"N": str(n)}, "text": {"S": text}},
                )
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.recorder:handler", concurrency=4, env={"ESM_RECORDER_FILE": str(out)}
    ).wait_serving()
    mappings = [
        {
            "UUID": str(uuid.uuid4()),
            "FunctionName": "fn",
            "EventSourceArn": table["LatestStreamArn"],
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 5,
            "ParallelizationFactor": 4,
            "PollingIntervalInSeconds": 0.1,
        }
        for table in (poisoned, clean)
    ]
    config = write_config(tmp_path / "esm.json", [function(worker)], mappings)
    engine = stream_daemon(config, emulator_env(dynamodb=dynamodb_local))
    arns = [table["LatestStreamArn"] for table in (poisoned, clean)]
    try:
        wait_until(
            lambda: all(
                sum(len(changes) for changes in dynamodb_deliveries(out, arn).values()) >= 48 for arn in arns
            ),
            timeout=90,
            message="every change of both tables delivered",
        )
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    got, expected = (dynamodb_deliveries(out, arn) for arn in arns)
    assert got["item-0"][1][1]["text"] == {"S": "bad \ufffd text"}
    got["item-0"][1][1]["text"] = {"S": "v1"}
    assert got == expected  # every item's changes, in order, as from the clean table
