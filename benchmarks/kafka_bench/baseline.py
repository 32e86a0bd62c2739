"""(a) Baseline: how fast one plain kafka-python consumer reads the topic on this machine."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from kafka_bench.stats import rate

BASELINE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class BaselineResult:
    records: int
    seconds: float
    seconds_after_first_poll: float
    """From the first poll that returned records to the last: the steady-state rate."""
    records_after_first_poll: int

    @property
    def records_per_s(self) -> float:
        return rate(self.records, self.seconds)

    @property
    def records_per_s_after_first_poll(self) -> float:
        return rate(self.records_after_first_poll, self.seconds_after_first_poll)


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int) -> BaselineResult:
    """Read the topic from the start with a fresh group until `expected` records arrived.

    Timed from creating the consumer (connecting included), as the engine is timed from its start.
    """
    started = time.monotonic()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        received = 0
        first_poll: float | None = None
        first_count = 0
        while received < expected:
            if time.monotonic() - started > BASELINE_TIMEOUT_S:
                raise RuntimeError(
                    f"baseline consumer read {received} of {expected} records in {BASELINE_TIMEOUT_S}s"
                )
            for records in consumer.poll(timeout_ms=200, max_records=10_000).values():
                received += len(records)
            if first_poll is None and received:
                first_poll, first_count = time.monotonic(), received
        finished = time.monotonic()
        assert first_poll is not None
        return BaselineResult(received, finished - started, finished - first_poll, received - first_count)
    finally:
        consumer.close()
