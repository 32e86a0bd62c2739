"""Where a Kafka mapping's partitions stand, read from the brokers: partitions, end offsets, and
the consumer group's committed offsets (what standard Kafka tooling shows too)."""

from __future__ import annotations

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
    bootstrap: list[str], topic: str, group: str, timeout_s: float = 10.0
) -> list[PartitionPosition]:
    """Raises KafkaPositionsError when the cluster cannot be read."""
    servers = ",".join(bootstrap)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, client_id="esm-status", request_timeout_ms=int(timeout_s * 1000)
        )
        try:
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        finally:
            consumer.close()
        if not partitions:
            raise KafkaPositionsError(f"topic {topic!r} not found on {servers}")
        ends = read_highwaters(servers, topic, partitions, timeout_s=timeout_s)
        committed = committed_offsets(servers, group, topic)
    except (KafkaError, KafkaOffsetsError) as err:
        raise KafkaPositionsError(f"cannot read {topic!r} on {servers}: {err}") from err
    return [PartitionPosition(p, committed.get(p), ends.get(p)) for p in partitions]


class KafkaPositionsError(Exception):
    pass
