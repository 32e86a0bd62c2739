"""Kafka helpers for tests, the demo and benchmarks: create topics, produce, read positions.

Written against the embedded Tansu broker but plain kafka-python underneath, so they work with
any Kafka. Where Tansu differs from Kafka (docs/architecture.md), they use the variant that is right on
both: topics are created explicitly (Tansu would auto-create 4 partitions on first touch) and
end offsets come from a fetch's high-water mark (Tansu's ListOffsets LATEST is wrong).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer

from esm.sources.kafka_offsets import KafkaOffsetsError, committed_offsets, read_highwaters

__all__ = [
    "KafkaHelperError",
    "OutgoingRecord",
    "committed_offsets",
    "create_topic",
    "produce",
    "read_highwaters",
]

# Check deliveries every so many records, so a broken broker is noticed early and the list of
# pending futures stays bounded.
_DELIVERY_CHECK_EVERY = 5000


class KafkaHelperError(KafkaOffsetsError):
    """A topic could not be created, a record was not delivered, or a position not read."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to produce. `partition` None lets the producer's partitioner choose."""

    value: bytes | None
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    partition: int | None = None
    timestamp_ms: int | None = None


# How long kafka-python tries to reach a first broker before giving up (its default: 30 s).
BOOTSTRAP_TIMEOUT_S = 30.0


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 4,
    *,
    timeout_s: float = 15.0,
    bootstrap_timeout_s: float = BOOTSTRAP_TIMEOUT_S,
) -> None:
    """Create topic `name` with `partitions` partitions and wait until metadata shows them all."""
    if partitions < 1:
        raise ValueError(f"partitions for topic {name!r} must be at least 1, got {partitions}")
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="esm-create-topic",
        bootstrap_timeout_ms=int(bootstrap_timeout_s * 1000),
    )
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
    bootstrap_timeout_s: float = BOOTSTRAP_TIMEOUT_S,
) -> int:
    """Produce `records` to `topic`, wait until all are acknowledged; returns how many were sent."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        bootstrap_timeout_ms=int(bootstrap_timeout_s * 1000),
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
