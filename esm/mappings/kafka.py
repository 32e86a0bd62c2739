"""Runs one Kafka event source mapping in this process: a consumer-group reader (esm.sources) and
one `Shard` (esm.shard) per assigned partition, kept by the mapping's `ShardSupervisor`.

Ownership is the group's: each assignment of a partition is an epoch (esm.ownership's
`PartitionAssignment`) whose checkpoint is the offset the reader thread commits next; a revoked
epoch refuses completions, and its shard is dropped. Partitions proceed independently; the group
spreads them over processes and hosts. With ParallelizationFactor N (an esm extension for Kafka)
each partition has N lanes: records go to a lane by a hash of their key, so order holds per key,
and the committed offset never passes a record that has not completed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from esm.events.kafka import EventRecord, KafkaEventBuilder, estimated_entry_size
from esm.events.unreadable import unreadable_positions
from esm.filtering import RecordFilter, kafka_filter_view
from esm.mappings.failure_handling import FailureHandling
from esm.mappings.kafka_failures import KafkaFailureSink
from esm.metrics import Metrics
from esm.ownership.kafka_assignment import GroupCheckpointer, PartitionAssignment
from esm.shard.batching import BatchLimits
from esm.shard.contracts import Invoker
from esm.shard.failures import FailurePolicy
from esm.shard.lane import LaneServices
from esm.shard.metrics import ShardMetrics
from esm.shard.shard import Shard
from esm.shard.supervisor import ShardSupervisor
from esm.sources.kafka import KafkaGroupReader, ReaderSettings
from esm.sources.kafka_group import GroupReader
from esm.tracing.batch import BatchTracing

log = logging.getLogger(__name__)

# How long a shutdown waits for the reader thread to commit and leave the group. Its client calls
# are bounded (esm.sources.kafka_group's timeouts) well within this, brokers reachable or not.
READER_CLOSE_SECONDS = 10.0


class KafkaRecordFormat:
    """One partition's records (esm.events.kafka entries) as the engine sees them."""

    def __init__(self, partition_key: str, builder: KafkaEventBuilder, record_filter: RecordFilter) -> None:
        self._key = partition_key  # "<topic>-<partition>"
        self._builder = builder
        self._filter = record_filter

    def build_event(self, records: Sequence[EventRecord]) -> bytes:
        return self._builder.build(self._key, records)

    def record_time(self, record: EventRecord) -> float:
        return float(record["timestamp"]) / 1000.0

    def select(self, records: list[EventRecord]) -> list[EventRecord]:
        if self._filter.accepts_all:
            return records
        matches = self._filter.matches
        return [record for record in records if matches(kafka_filter_view(record))]

    def index_of(self, records: Sequence[EventRecord], identifier: Any) -> int | None:
        """Kafka's itemIdentifier: `{"partition": "<topic>-<partition>", "offset": N}`."""
        if not isinstance(identifier, dict) or identifier.get("partition") != self._key:
            return None
        offset = identifier.get("offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or not records:
            return None
        guess: int = offset - int(records[0]["offset"])  # consecutive unless the topic is compacted
        if 0 <= guess < len(records) and records[guess]["offset"] == offset:
            return guess
        return next((i for i, record in enumerate(records) if record["offset"] == offset), None)

    def unreadable_positions(self, records: Sequence[EventRecord]) -> list[int]:
        return unreadable_positions(records)

    def lane_key(self, record: EventRecord) -> str | None:
        key: str | None = record.get("key")  # base64 of the key's bytes; None for a null key
        return key

    def order(self, record: EventRecord) -> int:
        offset: int = record["offset"]
        return offset

    def describe_position(self, record: EventRecord) -> str:
        return f"offset {record['offset']}"


# kafka-python's and librdkafka's session.timeout.ms when a mapping does not set it.
DEFAULT_SESSION_TIMEOUT_MS = 45_000


def _taken_from_buffer(assignment: PartitionAssignment, size_bytes: int) -> None:
    """Buffered bytes went into a batch: the reader may fetch more (flow control)."""
    assignment.add_buffered(-size_bytes)


def _offset_of(record: EventRecord) -> int:
    offset: int = record["offset"]
    return offset


class KafkaPartition:
    """One assigned partition: its shard for this ownership epoch."""

    def __init__(self, assignment: PartitionAssignment, shard: Shard[EventRecord]) -> None:
        self.assignment = assignment
        self.shard = shard

    def lease_lost(self) -> None:
        self.shard.lease_lost()

    def request_shutdown(self) -> None:
        self.shard.request_shutdown()

    def status_report(self, owner: str) -> dict[str, Any]:
        return {
            "owner": owner,
            **self.shard.status_fields(),
            "completed": self.assignment.completed,
            "committed": self.assignment.committed,
            "in_flight": self.shard.in_flight(_offset_of),
        }


class KafkaMappingRunner:
    def __init__(
        self,
        *,
        mapping_id: str,
        reader_settings: ReaderSettings,
        reader_class: type[GroupReader[Any]] = KafkaGroupReader,
        bootstrap_servers: Sequence[str],
        limits: BatchLimits,
        invoker: Invoker,
        policy: FailurePolicy,
        metrics: Metrics,
        failure_handling: FailureHandling | None = None,
        lanes: int = 1,
        tracing: BatchTracing | None = None,
    ) -> None:
        """`lanes`: the mapping's ParallelizationFactor (batches in flight per partition)."""
        self.mapping_id = mapping_id
        self._failures = failure_handling or FailureHandling()
        self._reader_settings = reader_settings
        self._reader_class = reader_class
        self._builder = KafkaEventBuilder(bootstrap_servers)
        self._lanes = lanes
        shard_metrics = ShardMetrics.of_mapping(metrics, mapping_id)
        self._services: LaneServices[EventRecord] = LaneServices(
            format=KafkaRecordFormat("", self._builder, self._failures.record_filter),
            invoker=invoker,
            policy=policy,
            metrics=shard_metrics,
            limits=limits,
            report_batch_item_failures=self._failures.report_batch_item_failures,
            tracing=tracing,
        )
        self.partitions: ShardSupervisor[int, KafkaPartition] = ShardSupervisor(
            mapping_id,
            shard_metrics,
            metrics.partitions_owned.labels(mapping_id),
            self._failure_sink,
            self._failures.destination,
        )
        self._polled = metrics.records_polled.labels(mapping_id)
        self._lag = metrics.offset_lag.labels(mapping_id)
        self._commits = metrics.commits.labels(mapping_id)
        self._commit_failures = metrics.commit_failures.labels(mapping_id)
        self._dropped_on_revoke = metrics.records_dropped_on_revoke.labels(mapping_id)
        self._reader: GroupReader[Any] | None = None

    @property
    def shards(self) -> list[Shard[EventRecord]]:
        return [partition.shard for _, partition in self.partitions]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader = self._reader_class(self._reader_settings, self, loop, estimated_entry_size)
        self._reader.start()

    async def shutdown(self, deadline: float) -> None:
        """Two phases: stop fetching and let batches in flight finish until `deadline` (monotonic),
        then commit what completed and leave the group."""
        assert self._reader is not None
        self._reader.stop_fetching()
        await self.partitions.shutdown(deadline)
        await asyncio.get_running_loop().run_in_executor(None, self._reader.close, READER_CLOSE_SECONDS)
        await self.partitions.close_destination()

    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]:
        """What `esm status` shows of each partition this process owns, and when: a report older
        than the group's session timeout may be from a member that lost the partition."""
        session_ms = self._reader_settings.consumer_kwargs.get(
            "session_timeout_ms", DEFAULT_SESSION_TIMEOUT_MS
        )
        moment = {"reported_at": time.time(), "session_seconds": session_ms / 1000}
        return {key: {**report, **moment} for key, report in self.partitions.status_reports(owner).items()}

    def _failure_sink(self, partition_key: str) -> KafkaFailureSink | None:
        destination = self._failures.destination
        if destination is None:
            return None
        return KafkaFailureSink(
            destination,
            partition_key,
            self._builder,
            self._failures.function_arn,
            self._failures.include_payload,
        )

    # -- PartitionEvents: called on the loop by the reader ---------------------------------

    def reconfigure(
        self, limits: BatchLimits, policy: FailurePolicy, failure_handling: FailureHandling, invoker: Invoker
    ) -> None:
        """New settings (a control-API update): each partition's next batch uses them."""
        self._failures = failure_handling
        self._services = replace(
            self._services,
            invoker=invoker,
            policy=policy,
            limits=limits,
            report_batch_item_failures=failure_handling.report_batch_item_failures,
        )
        self.partitions.replace_destination(failure_handling.destination)
        for _, partition in self.partitions:
            key = str(partition.assignment.tp)
            partition.shard.reconfigure(self._partition_services(key), self.partitions.sink_for(key))

    def _partition_services(self, key: str) -> LaneServices[EventRecord]:
        return replace(
            self._services, format=KafkaRecordFormat(key, self._builder, self._failures.record_filter)
        )

    def partitions_assigned(self, assignments: list[PartitionAssignment]) -> None:
        for assignment in assignments:
            key = str(assignment.tp)
            shard: Shard[EventRecord] = Shard(
                key,
                self._partition_services(key),
                GroupCheckpointer(assignment, _offset_of),
                lanes=self._lanes,
                sink=self.partitions.sink_for(key),
                taken=partial(_taken_from_buffer, assignment),
            )
            partition = KafkaPartition(assignment, shard)
            self.partitions.start(
                assignment.tp.partition, partition, shard.run(), crashed=self._restart_later
            )
        log.info("mapping %s: assigned %s", self.mapping_id, partition_list(assignments))

    def partitions_revoked(self, assignments: list[PartitionAssignment]) -> None:
        for assignment in assignments:
            partition = self.partitions.get(assignment.tp.partition)
            if partition is not None and partition.assignment is assignment:
                self.partitions.drop(assignment.tp.partition)
        log.info("mapping %s: revoked %s", self.mapping_id, partition_list(assignments))

    def _restart_later(self, partition: KafkaPartition, delay: float) -> None:
        """A shard that raised (a bug, not a function error) would leave its partition stalled:
        it is read again from its checkpoint, in a new epoch."""
        if self._reader is not None and partition.assignment.active:
            asyncio.get_running_loop().call_later(delay, self._reader.restart, partition.assignment.tp)

    def records_fetched(self, assignment: PartitionAssignment, records: list[Any], sizes: list[int]) -> None:
        partition = self.partitions.get(assignment.tp.partition)
        if partition is None or partition.assignment is not assignment or not assignment.active:
            # Fetched before the revoke reached the loop: the partition's new owner reads them.
            self._dropped_on_revoke.inc(len(records))
            return
        partition.shard.deliver(records, sizes)
        self._polled.inc(len(records))

    def lag_measured(self, total_lag: int) -> None:
        self._lag.set(total_lag)

    def committed(self, count: int, failed: bool) -> None:
        if failed:
            self._commit_failures.inc()
        else:
            self._commits.inc(count)


def partition_list(assignments: list[PartitionAssignment]) -> str:
    """`orders-0, orders-1, orders-10`: in partition order, whatever order the group gave them in."""
    return ", ".join(str(a.tp) for a in sorted(assignments, key=lambda a: (a.tp.topic, a.tp.partition)))
