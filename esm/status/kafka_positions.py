"""Where a Kafka mapping's partitions stand, read from the brokers: partitions, end offsets, and
the consumer group's committed offsets (what standard Kafka tooling shows too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.errors import KafkaError

from esm.sources.kafka_offsets import KafkaOffsetsError, committed_offsets, read_highwaters


@dataclass(frozen=True)
class PartitionPosition:
    partition: int
    committed: int | None
    end: int | None

    @property
    def lag(self) -> int | None:
        if self.end is None:
            return None
        return self.end - (self.committed or 0)


def kafka_positions(
    bootstrap: list[str],
    topic: str,
    group: str,
    timeout_s: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[PartitionPosition]:
    """Raises KafkaPositionsError when the cluster cannot be read within about `timeout_s` (the
    three reads share it: brokers that are down fail the first one, after at most that long)."""
    servers = ",".join(bootstrap)
    deadline = clock() + timeout_s

    def left() -> float:
        remaining = deadline - clock()
        if remaining <= 0:
            raise KafkaPositionsError(
                f"cannot read {topic!r} on {servers}: no answer within {timeout_s:.0f}s"
            )
        return remaining

    try:
        timeout_ms = int(left() * 1000)
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="esm-status",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
        try:
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        finally:
            consumer.close(timeout_ms=0)
        if not partitions:
            raise KafkaPositionsError(f"topic {topic!r} not found on {servers}")
        ends = read_highwaters(servers, topic, partitions, timeout_s=left())
        committed = committed_offsets(servers, group, topic, timeout_s=left())
    except (KafkaError, KafkaOffsetsError) as err:
        raise KafkaPositionsError(f"cannot read {topic!r} on {servers}: {err}") from err
    return [PartitionPosition(p, committed.get(p), ends.get(p)) for p in partitions]


class KafkaPositionsError(Exception):
    pass
