"""The Kafka mapping runner on a real broker, with a scripted invoker standing in for the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from prometheus_client import CollectorRegistry

from esm.dispatch.outcomes import InvokeOutcome
from esm.embedded.topics import OutgoingRecord, committed_offsets, produce
from esm.mappings.kafka import KafkaMappingRunner
from esm.metrics import Metrics
from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId
from esm.shard.batching import BatchLimits
from esm.shard.failures import FailurePolicy
from esm.sources.kafka import ReaderSettings


class CrashOnceInvoker:
    """Raises an unexpected exception (a bug, not a function error) on the first call."""

    def __init__(self) -> None:
        self.calls = 0
        self.offsets: list[int] = []

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("unexpected bug")
        event = orjson.loads(payload)
        self.offsets += [r["offset"] for records in event["records"].values() for r in records]
        return InvokeOutcome.success(b"null")


async def test_a_crashed_partition_consumer_is_restarted_from_its_checkpoint(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, [OutgoingRecord(value=f"v{i}".encode(), partition=0) for i in range(30)])
    kwargs = {
        "bootstrap_servers": [kafka_broker],
        "group_id": f"g-{topic}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 1500,
        "heartbeat_interval_ms": 300,
        "fetch_max_wait_ms": 20,
    }
    invoker = CrashOnceInvoker()
    runner = KafkaMappingRunner(
        mapping_id="m",
        reader_settings=ReaderSettings(topic, kwargs, "earliest"),
        bootstrap_servers=[kafka_broker],
        limits=BatchLimits(10, 0.0),
        invoker=invoker,
        policy=FailurePolicy(),
        metrics=Metrics(CollectorRegistry()),
    )
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while committed_offsets(kafka_broker, f"g-{topic}", topic).get(0) != 30:
            assert time.monotonic() < deadline, "the partition was not processed after the crash"
            await asyncio.sleep(0.2)
    finally:
        await runner.shutdown(time.monotonic() + 5)
    assert invoker.offsets == list(range(30))  # re-read from the checkpoint (0), in order, nothing skipped


async def test_records_fetched_for_a_revoked_epoch_count_as_dropped_on_revoke() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    runner = KafkaMappingRunner(
        mapping_id="m",
        reader_settings=ReaderSettings("t", {}, "earliest"),
        bootstrap_servers=["127.0.0.1:1"],
        limits=BatchLimits(10, 0.0),
        invoker=CrashOnceInvoker(),
        policy=FailurePolicy(),
        metrics=metrics,
    )
    assignment = PartitionAssignment(TopicPartitionId("t", 0), epoch=1)
    runner.partitions_assigned([assignment])
    assignment.revoke()
    runner.partitions_revoked([assignment])

    # Fetched by the reader thread before the revoke, reaching the loop after it.
    runner.records_fetched(assignment, [{"offset": 7}, {"offset": 8}], [10, 10])

    dropped = registry.get_sample_value("esm_records_dropped_on_revoke_total", {"mapping": "m"})
    assert dropped == 2
