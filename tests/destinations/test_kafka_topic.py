"""The Kafka topic destination against the embedded Tansu broker (a fresh topic per test)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from esm.destinations.encoding import StoredEntry, UnreadableEntry
from esm.destinations.errors import DestinationRejectedError, DestinationUnavailableError
from esm.destinations.kafka_topic import KafkaTopicDestination, message_key, read_topic_records
from esm.destinations.opener import open_destination, read_records
from esm.embedded import OutgoingRecord, produce


def _kafka_record(n: int, partition_keys: tuple[str, ...] = ("orders-1",)) -> dict[str, Any]:
    return {
        "requestContext": {"requestId": f"req-{n}"},
        "KafkaBatchInfo": {
            "batchSize": 1,
            "recordsInfo": {key: {"firstRecordOffset": str(n)} for key in partition_keys},
        },
        "payload": {"n": n},
    }


async def _read_all(uri: str, source: tuple[str, ...] | None = None) -> list[StoredEntry]:
    return [record async for record in read_records(uri, source)]


def _keys_on(bootstrap: str, topic: str, partitions: int) -> list[bytes | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=50)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        keys: list[bytes | None] = []
        for _ in range(20):
            for messages in consumer.poll(timeout_ms=200).values():
                keys.extend(message.key for message in messages)
            if len(keys) >= 3:
                break
        return keys
    finally:
        consumer.close()


async def test_round_trip_keyed_by_the_failed_partition(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    uri = f"kafka://{kafka_broker}/{topic}"
    destination = open_destination(uri, None)
    sent = [_kafka_record(1), _kafka_record(2), _kafka_record(3, ("orders-1", "orders-2"))]
    try:
        for record in sent:
            await destination.send(record)
    finally:
        await destination.close()

    assert sorted(await _read_all(uri), key=lambda r: r["payload"]["n"]) == sent
    assert sorted(_keys_on(kafka_broker, topic, 2), key=lambda k: k or b"") == [
        None,
        b"orders-1",
        b"orders-1",
    ]


async def test_kafka_topic_form_writes_to_the_mappings_own_cluster(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    source = (kafka_broker,)
    destination = open_destination(f"kafka://{topic}", source)
    try:
        await destination.send(_kafka_record(9))
    finally:
        await destination.close()
    assert await _read_all(f"kafka://{topic}", source) == [_kafka_record(9)]


async def test_reading_an_empty_topic_ends_at_once(kafka_broker: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3)
    started = time.monotonic()
    assert [r async for r in read_topic_records([kafka_broker], topic, timeout_s=10)] == []
    assert time.monotonic() - started < 5


async def test_reading_gets_every_message_of_multi_record_batches(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    # Produced with lingering, so the broker stores several messages per batch: the end of a
    # partition must come from the fetch's high-water mark, not from the last batch's offset.
    topic = new_topic(partitions=3)
    records = [_kafka_record(n) for n in range(300)]
    produce(
        kafka_broker,
        topic,
        (OutgoingRecord(value=orjson.dumps(r), partition=r["payload"]["n"] % 3) for r in records),
    )
    read = [r async for r in read_topic_records([kafka_broker], topic, timeout_s=10)]
    assert sorted(read, key=lambda r: r["payload"]["n"]) == records
    for partition in range(3):
        in_partition = [r["payload"]["n"] for r in read if r["payload"]["n"] % 3 == partition]
        assert in_partition == sorted(in_partition)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_down_broker_is_a_retryable_error_and_the_next_send_tries_again() -> None:
    port = _closed_port()
    destination = KafkaTopicDestination([f"127.0.0.1:{port}"], "failures", timeout_s=0.5)
    started = time.monotonic()
    try:
        for _ in range(2):
            with pytest.raises(
                DestinationUnavailableError, match=rf"127.0.0.1:{port}.*failed to write"
            ) as caught:
                await destination.send(_kafka_record(1))
            assert caught.value.retryable is True
    finally:
        await destination.close()
    assert time.monotonic() - started < 5


async def test_reading_a_topic_that_does_not_exist_is_an_error_and_creates_nothing(kafka_broker: str) -> None:
    topic = f"never-written-{time.monotonic_ns()}"
    with pytest.raises(DestinationRejectedError, match=rf"topic '{topic}'.* does not exist"):
        _ = [r async for r in read_topic_records([kafka_broker], topic, timeout_s=10)]
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker, group_id=None, allow_auto_create_topics=False)
    try:
        assert topic not in consumer.topics()
    finally:
        consumer.close()


async def test_a_message_that_is_not_a_record_is_named_and_reading_goes_on(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    produce(
        kafka_broker,
        topic,
        [
            OutgoingRecord(value=b'{"torn', partition=0),
            OutgoingRecord(value=orjson.dumps(_kafka_record(2)), partition=0),
        ],
    )
    first, second = [r async for r in read_topic_records([kafka_broker], topic, timeout_s=10)]
    assert isinstance(first, UnreadableEntry)
    assert first.where.endswith("partition 0 offset 0") and "is not valid JSON" in first.reason
    assert second == _kafka_record(2)


async def test_reading_from_a_down_broker_is_a_retryable_error() -> None:
    port = _closed_port()
    with pytest.raises(DestinationUnavailableError, match="failed to start reading"):
        _ = [r async for r in read_topic_records([f"127.0.0.1:{port}"], "failures", timeout_s=0.5)]


@pytest.mark.parametrize(
    ("record", "key"),
    [
        (_kafka_record(1, ("orders-7",)), b"orders-7"),
        (_kafka_record(1, ("orders-7", "orders-8")), None),
        ({"KinesisBatchInfo": {"shardId": "shardId-000000000003"}}, b"shardId-000000000003"),
        ({"DDBStreamBatchInfo": {"shardId": "shardId-0001-ab"}}, b"shardId-0001-ab"),
        ({"requestContext": {}}, None),
    ],
)
def test_message_key(record: dict[str, Any], key: bytes | None) -> None:
    assert message_key(record) == key
