"""The Kafka helpers against the session's embedded broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from esm.embedded import OutgoingRecord, committed_offsets, create_topic, produce, read_highwaters


def _partition_count(bootstrap: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (described,) = [t for t in admin.describe_topics([topic]) if t["name"] == topic]
        return len(described["partitions"])
    finally:
        admin.close()


def test_new_topic_has_the_requested_partitions(kafka_broker: str, new_topic: Callable[..., str]) -> None:
    default_topic, two = new_topic(), new_topic(partitions=2)
    assert default_topic != two
    assert _partition_count(kafka_broker, default_topic) == 4
    assert _partition_count(kafka_broker, two) == 2


def test_create_topic_rejects_zero_partitions(kafka_broker: str) -> None:
    with pytest.raises(ValueError, match=r"'bad-topic'.*at least 1"):
        create_topic(kafka_broker, "bad-topic", 0)


def test_produce_then_read_highwaters_and_records(kafka_broker: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3)
    assert read_highwaters(kafka_broker, topic, range(3)) == {0: 0, 1: 0, 2: 0}
    records = [
        OutgoingRecord(
            value=b"v%d" % i,
            key=b"k%d" % i,
            headers=[("h", b"%d" % i)],
            partition=i % 2,  # partition 2 stays empty
            timestamp_ms=1_700_000_000_000 + i,
        )
        for i in range(7)
    ]
    assert produce(kafka_broker, topic, records) == 7
    assert read_highwaters(kafka_broker, topic, range(3)) == {0: 4, 1: 3, 2: 0}

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker, group_id=None, fetch_max_wait_ms=10)
    consumer.assign([TopicPartition(topic, 1)])
    consumer.seek_to_beginning()
    got = []
    for _ in range(100):
        for batch in consumer.poll(timeout_ms=100).values():
            got.extend(batch)
        if len(got) >= 3:
            break
    consumer.close()
    assert [(r.key, r.value, r.headers, r.timestamp) for r in got] == [
        (b"k1", b"v1", [("h", b"1")], 1_700_000_000_001),
        (b"k3", b"v3", [("h", b"3")], 1_700_000_000_003),
        (b"k5", b"v5", [("h", b"5")], 1_700_000_000_005),
    ]


def test_committed_offsets_reads_what_a_group_committed(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    produce(kafka_broker, topic, [OutgoingRecord(value=b"x", partition=p) for p in (0, 0, 1)])
    group = f"g-{topic}"
    assert committed_offsets(kafka_broker, group, topic) == {}

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    seen = 0
    for _ in range(100):
        seen += sum(len(batch) for batch in consumer.poll(timeout_ms=100).values())
        if seen >= 3:
            break
    consumer.commit()
    consumer.close()
    assert committed_offsets(kafka_broker, group, topic) == {0: 2, 1: 1}
