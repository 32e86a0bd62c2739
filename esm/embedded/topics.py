"""Kafka helpers for tests, the demo and benchmarks: create topics, produce, read positions.

Written against the embedded Tansu broker but plain kafka-python underneath, so they work with
any Kafka. Where Tansu differs from Kafka (SERVICES.md), they use the variant that is right on
both: topics are created explicitly (Tansu would auto-create 4 partitions on first touch) and
end offsets come from a fetch's high-water mark (Tansu's ListOffsets LATEST is wrong).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

# Check deliveries every so many records, so a broken broker is noticed early and the list of
# pending futures stays bounded.
_DELIVERY_CHECK_EVERY = 5000


class KafkaHelperError(RuntimeError):
    """A topic could not be created, a record was not delivered, or a position not read."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to produce. `partition` None lets the producer's partitioner choose."""

    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    partition: int | None = None
    timestamp_ms: int | None = None


def create_topic(bootstrap: str, name: str, partitions: int = 4, *, timeout_s: float = 15.0) -> None:
    """Create topic `name` with `partitions` partitions and wait until metadata shows them all."""
    if partitions < 1:
        raise ValueError(f"partitions for topic {name!r} must be at least 1, got {partitions}")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="esm-create-topic")
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            timeout_ms=int(timeout_s * 1000),
        )
        _wait_for_partitions(admin, name, partitions, timeout_s)
    finally:
        admin.close()


def _wait_for_partitions(admin: Any, name: str, expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        described = [t for t in admin.describe_topics([name]) if t.get("name") == name]
        seen = len(described[0].get("partitions") or []) if described else 0
        if seen == expected:
            return
        time.sleep(0.05)  # the broker publishes metadata asynchronously
    raise KafkaHelperError(
        f"topic {name!r}: metadata shows {seen} partitions after {timeout_s}s, expected {expected}"
    )


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[OutgoingRecord],
    *,
    linger_ms: int = 5,
    batch_size: int = 256 * 1024,
    timeout_s: float = 60.0,
) -> int:
    """Produce `records` to `topic`, wait until all are acknowledged; returns how many were sent."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=linger_ms,
        batch_size=batch_size,
        acks=1,
        client_id="esm-produce",
    )
    sent = 0
    pending: list[Any] = []
    try:
        for record in records:
            pending.append(
                producer.send(
                    topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    partition=record.partition,
                    timestamp_ms=record.timestamp_ms,
                )
            )
            sent += 1
            if len(pending) >= _DELIVERY_CHECK_EVERY:
                _check_delivered(producer, pending, topic, timeout_s)
                pending = []
        _check_delivered(producer, pending, topic, timeout_s)
    finally:
        producer.close(timeout=timeout_s)
    return sent


def _check_delivered(producer: Any, pending: list[Any], topic: str, timeout_s: float) -> None:
    producer.flush(timeout=timeout_s)
    for future in pending:
        if not future.is_done:
            raise KafkaHelperError(f"topic {topic!r}: a record was not acknowledged within {timeout_s}s")
        if future.failed():
            raise KafkaHelperError(f"topic {topic!r}: a record was not delivered: {future.exception!r}")


def read_highwaters(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    *,
    timeout_s: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[int, int]:
    """The end offset (offset of the next record) of each partition, from fetch responses.

    Reads from the (possibly too low) LATEST offset so the fetch is small; the high-water mark
    in the response is right even where ListOffsets is not.
    """
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        client_id="esm-read-highwaters",
    )
    try:
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        deadline = clock() + timeout_s
        while clock() < deadline:
            consumer.poll(timeout_ms=100)
            marks = {tp.partition: consumer.highwater(tp) for tp in tps}
            if all(mark is not None for mark in marks.values()):
                return {p: int(mark) for p, mark in marks.items()}
        missing = sorted(tp.partition for tp in tps if consumer.highwater(tp) is None)
        raise KafkaHelperError(
            f"topic {topic!r}: no high-water mark for partitions {missing} after {timeout_s}s"
        )
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offsets on `topic`, by partition (absent: none committed)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="esm-committed-offsets")
    try:
        by_group = admin.list_group_offsets({group_id: None})
    finally:
        admin.close()
    offsets = by_group.get(group_id, {})
    return {
        tp.partition: int(meta.offset)
        for tp, meta in offsets.items()
        if tp.topic == topic and meta.offset >= 0  # -1: no commit for that partition
    }
