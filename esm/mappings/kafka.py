"""Runs one Kafka event source mapping in this process: a group reader plus one shard consumer per
assigned partition. Partitions proceed independently; the group spreads them over processes/hosts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from esm.destinations import Destination
from esm.events.kafka import EventRecord, KafkaEventBuilder, estimated_entry_size
from esm.filtering import RecordFilter, compile_filters, kafka_filter_view
from esm.mappings.kafka_failures import KafkaFailureSink
from esm.metrics import Metrics
from esm.ownership.kafka_assignment import PartitionAssignment
from esm.shard.batching import BatchLimits, RecordBuffer
from esm.shard.failures import FailurePolicy
from esm.shard.lane import Invoker, ShardConsumer, ShardMetrics
from esm.sources.kafka import KafkaGroupReader, ReaderSettings
from esm.sources.kafka_group import GroupReader

log = logging.getLogger(__name__)

SHARD_RESTART_CAP_SECONDS = 60.0


class KafkaPartitionSource:
    """The Kafka side of one partition's shard consumer: event shape, fenced completion, flow control."""

    def __init__(
        self, assignment: PartitionAssignment, builder: KafkaEventBuilder, record_filter: RecordFilter
    ) -> None:
        self._assignment = assignment
        self._builder = builder
        self._filter = record_filter
        self._key = str(assignment.tp)

    def select(self, records: list[EventRecord]) -> list[EventRecord]:
        if self._filter.accepts_all:
            return records
        matches = self._filter.matches
        return [record for record in records if matches(kafka_filter_view(record))]

    def build_event(self, records: Sequence[EventRecord]) -> bytes:
        return self._builder.build(self._key, records)

    def record_time(self, record: EventRecord) -> float:
        return float(record["timestamp"]) / 1000.0

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

    async def checkpoint_after(self, record: EventRecord) -> bool:
        # Kafka's convention: commit the next offset to read. The reader thread commits it.
        return self._assignment.complete(record["offset"] + 1)

    def taken(self, size_bytes: int) -> None:
        self._assignment.add_buffered(-size_bytes)

    @property
    def owned(self) -> bool:
        return self._assignment.active


@dataclass(frozen=True)
class FailureHandling:
    """A mapping's settings for what the failure policy does not decide itself."""

    record_filter: RecordFilter = field(default_factory=lambda: compile_filters([]))
    report_batch_item_failures: bool = False
    destination: Destination | None = None
    function_arn: str = ""
    include_payload: bool = True


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
    ) -> None:
        self.mapping_id = mapping_id
        self._failures = failure_handling or FailureHandling()
        self._reader_settings = reader_settings
        self._reader_class = reader_class
        self._builder = KafkaEventBuilder(bootstrap_servers)
        self._limits = limits
        self._invoker = invoker
        self._policy = policy
        self._metrics = metrics
        self._shard_metrics = ShardMetrics.of_mapping(metrics, mapping_id)
        self._polled = metrics.records_polled.labels(mapping_id)
        self._lag = metrics.offset_lag.labels(mapping_id)
        self._owned = metrics.partitions_owned.labels(mapping_id)
        self._commits = metrics.commits.labels(mapping_id)
        self._commit_failures = metrics.commit_failures.labels(mapping_id)
        self._shards: dict[int, tuple[PartitionAssignment, ShardConsumer[Any], asyncio.Task[None]]] = {}
        self._reader: GroupReader[Any] | None = None
        # Unexpected failures of each partition's consumer, for the restart backoff.
        self._crashes: dict[int, int] = {}

    @property
    def shards(self) -> list[ShardConsumer[Any]]:
        return [consumer for _, consumer, _ in self._shards.values()]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader = self._reader_class(self._reader_settings, self, loop, estimated_entry_size)
        self._reader.start()

    async def shutdown(self, deadline: float) -> None:
        """Two phases: stop fetching and let batches in flight finish until `deadline` (monotonic),
        then commit what completed and leave the group."""
        assert self._reader is not None
        self._reader.stop_fetching()
        tasks = []
        for _, consumer, task in self._shards.values():
            consumer.request_shutdown()
            tasks.append(task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "mapping %s: %d batches still in flight after the grace period; "
                    "they will be re-delivered",
                    self.mapping_id,
                    len(pending),
                )
                await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self._reader.close, 30.0)
        if self._failures.destination is not None:
            await self._failures.destination.close()

    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]:
        """What `esm status` shows of each partition this process owns."""
        reports: dict[str, dict[str, Any]] = {}
        for assignment, consumer, _ in self._shards.values():
            batch = consumer.current
            reports[str(assignment.tp.partition)] = {
                "owner": owner,
                "state": consumer.state.value,
                "completed": assignment.completed,
                "committed": assignment.committed,
                "buffered": len(consumer.buffer),
                "in_flight": (
                    None
                    if not batch
                    else {"first": batch[0]["offset"], "last": batch[-1]["offset"], "records": len(batch)}
                ),
                "retries": consumer.attempts.retries,
                "invocations": consumer.attempts.invocations,
                "last_error": consumer.last_error,
                "last_processing_result": consumer.last_processing_result,
            }
        return reports

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

    def partitions_assigned(self, assignments: list[PartitionAssignment]) -> None:
        for assignment in assignments:
            self._drop(assignment.tp.partition)
            buffer: RecordBuffer[Any] = RecordBuffer(time.monotonic)
            consumer: ShardConsumer[Any] = ShardConsumer(
                str(assignment.tp),
                buffer,
                self._limits,
                KafkaPartitionSource(assignment, self._builder, self._failures.record_filter),
                self._invoker,
                self._policy,
                self._shard_metrics,
                failure_sink=self._failure_sink(str(assignment.tp)),
                report_batch_item_failures=self._failures.report_batch_item_failures,
            )
            task = asyncio.create_task(consumer.run(), name=f"shard-{assignment.tp}")
            task.add_done_callback(partial(self._shard_ended, assignment))
            self._shards[assignment.tp.partition] = (assignment, consumer, task)
        self._owned.set(len(self._shards))
        log.info("mapping %s: assigned %s", self.mapping_id, ", ".join(str(a.tp) for a in assignments))

    def partitions_revoked(self, assignments: list[PartitionAssignment]) -> None:
        for assignment in assignments:
            entry = self._shards.get(assignment.tp.partition)
            if entry is not None and entry[0] is assignment:
                self._drop(assignment.tp.partition)
        self._owned.set(len(self._shards))
        log.info("mapping %s: revoked %s", self.mapping_id, ", ".join(str(a.tp) for a in assignments))

    def _shard_ended(self, assignment: PartitionAssignment, task: asyncio.Task[None]) -> None:
        """A shard consumer that raised (a bug, not a function error) would leave its partition
        stalled: it is read again from its checkpoint in a new epoch, after a delay that grows
        while it keeps failing."""
        if task.cancelled() or task.exception() is None:
            return
        crashes = self._crashes.get(assignment.tp.partition, 0) + 1
        self._crashes[assignment.tp.partition] = crashes
        delay = min(SHARD_RESTART_CAP_SECONDS, 2 ** (crashes - 1))
        log.error(
            "mapping %s: the consumer of %s failed; reading it again from its checkpoint in %.0fs",
            self.mapping_id,
            assignment.tp,
            delay,
            exc_info=task.exception(),
        )
        if self._reader is not None and assignment.active:
            asyncio.get_running_loop().call_later(delay, self._reader.restart, assignment.tp)

    def _drop(self, partition: int) -> None:
        entry = self._shards.pop(partition, None)
        if entry is not None:
            entry[1].lease_lost()

    def records_fetched(self, assignment: PartitionAssignment, records: list[Any], sizes: list[int]) -> None:
        entry = self._shards.get(assignment.tp.partition)
        if entry is None or entry[0] is not assignment or not assignment.active:
            return
        entry[1].buffer.extend(records, sizes)
        self._polled.inc(len(records))

    def lag_measured(self, total_lag: int) -> None:
        self._lag.set(total_lag)

    def committed(self, count: int, failed: bool) -> None:
        if failed:
            self._commit_failures.inc()
        else:
            self._commits.inc(count)
