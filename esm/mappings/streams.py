"""Runs one Kinesis or DynamoDB Streams mapping in this process: the lease coordinator
(esm.ownership: discovery, renew/take/steal/release) decides which shards this member holds,
and the mapping's `ShardSupervisor` runs a `StreamShard` per lease held.

A renewal or checkpoint refused means another member took the lease: that shard stops at once.
A shard that ends (SHARD_END) gives its lease up and lets discovery find its children; one that
crashes (a bug) gives its lease up after a delay that grows while it keeps failing, so it is
read again from its checkpoint, by this member or another. On shutdown the batches in flight
finish, and the leases are released so the other members take them without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from esm.mappings.failure_handling import FailureHandling
from esm.mappings.stream_failures import StreamFailureSink
from esm.mappings.stream_flavors import EventRecord, StreamFlavor, StreamRecordFormat
from esm.mappings.stream_shard import StreamShard, StreamShardSettings
from esm.metrics import Metrics
from esm.ownership.lease_coordinator import LeaseCoordinator, LeaseTiming
from esm.ownership.leases import Lease, LeaseStore, lease_namespace
from esm.shard.batching import BatchLimits
from esm.shard.contracts import Invoker
from esm.shard.failures import FailurePolicy
from esm.shard.lane import LaneServices
from esm.shard.metrics import ShardMetrics
from esm.shard.sink import FailureSink
from esm.shard.supervisor import ShardSupervisor
from esm.shard.waits import REAL_WAITS, Waits
from esm.sources.stream_discovery import ShardInfo, ShardLister
from esm.sources.stream_shards import READ_RESULTS, ReadResult, read_result
from esm.status.unowned_gauge import UnownedShardsGauge
from esm.stores import StoreError
from esm.stores.status import DATA_LOSS_KEPT_SECONDS, ShardStatusStore, data_loss_key
from esm.tracing.batch import BatchTracing

__all__ = ["LeaseTiming", "StreamMappingRunner", "lease_namespace"]

log = logging.getLogger(__name__)

# Threads for the blocking boto3 calls of one mapping (one GetRecords per shard at a time).
READER_THREADS = 32


class StreamMappingRunner:
    def __init__(
        self,
        *,
        mapping_id: str,
        flavor: StreamFlavor,
        settings: StreamShardSettings,
        client: Any,
        lister: ShardLister,
        leases: LeaseStore,
        timing: LeaseTiming,
        invoker: Invoker,
        metrics: Metrics,
        failure_handling: FailureHandling,
        status: ShardStatusStore | None = None,
        waits: Waits = REAL_WAITS,
        tracing: BatchTracing | None = None,
        function_name: str = "",
    ) -> None:
        """`status`: where a shard whose checkpoint was trimmed is recorded for `esm status`.
        `waits`: how the shards wait out delays (tests pass shorter ones)."""
        self.mapping_id = mapping_id
        self._status = status
        self._flavor = flavor
        self._settings = settings
        self._client = client
        self._lister = lister
        self._leases = leases
        self._failures = failure_handling
        self._executor = ThreadPoolExecutor(READER_THREADS, thread_name_prefix=f"esm-{mapping_id[:8]}")
        shard_metrics = ShardMetrics.of_mapping(metrics, mapping_id)
        self._services: LaneServices[EventRecord] = LaneServices(
            format=StreamRecordFormat(flavor, settings.record_filter),
            invoker=invoker,
            policy=settings.policy,
            metrics=shard_metrics,
            limits=settings.limits,
            report_batch_item_failures=settings.report_batch_item_failures,
            waits=waits,
            tracing=tracing,
        )
        self._waits = waits
        self.shards: ShardSupervisor[str, StreamShard] = ShardSupervisor(
            mapping_id,
            shard_metrics,
            metrics.partitions_owned.labels(mapping_id),
            self._failure_sink,
            failure_handling.destination,
        )
        self.coordinator = LeaseCoordinator(
            name=mapping_id,
            leases=UnownedShardsGauge(
                leases,
                metrics.shards_unowned.labels(mapping_id),
                label=f"mapping {mapping_id} (function {function_name or '?'}, stream {settings.stream_arn})",
                wait_seconds=timing.duration_seconds,
            ),
            namespace=settings.namespace,
            owner=settings.owner,
            timing=timing,
            list_shards=self._list_shards,
            holder=self,
            describe_stream=settings.stream_arn,
        )
        self._taken = metrics.leases_taken.labels(mapping_id)
        self._lost = metrics.leases_lost.labels(mapping_id)
        self._trimmed = metrics.trimmed_checkpoints.labels(mapping_id)
        self._behind = metrics.millis_behind_latest.labels(mapping_id)
        self._records_polled = metrics.records_polled.labels(mapping_id)
        self._reads = {result: metrics.shard_reads.labels(mapping_id, result) for result in READ_RESULTS}

    @property
    def namespace(self) -> str:
        return self._settings.namespace

    @property
    def owner(self) -> str:
        return self._settings.owner

    def start(self) -> None:
        self.coordinator.start()

    async def shutdown(self, deadline: float) -> None:
        """Lets the batches in flight finish until `deadline` (monotonic), checkpoints them, and
        releases the leases so the other members take them without waiting for expiry."""
        await self.coordinator.stop()
        for shard in await self.shards.shutdown(deadline):
            if shard.owned and not shard.ended:
                await self.coordinator.release(shard.shard_id, shard.token)
        self._executor.shutdown(wait=False, cancel_futures=True)
        await self.shards.close_destination()

    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]:
        return self.shards.status_reports(owner)

    def reconfigure(
        self, limits: BatchLimits, policy: FailurePolicy, failure_handling: FailureHandling, invoker: Invoker
    ) -> None:
        """New settings (a control-API update): each shard's next batch uses them."""
        self._failures = failure_handling
        self._settings = replace(
            self._settings,
            limits=limits,
            policy=policy,
            record_filter=failure_handling.record_filter,
            report_batch_item_failures=failure_handling.report_batch_item_failures,
        )
        self._services = replace(
            self._services,
            format=StreamRecordFormat(self._flavor, failure_handling.record_filter),
            invoker=invoker,
            policy=policy,
            limits=limits,
            report_batch_item_failures=failure_handling.report_batch_item_failures,
        )
        self.shards.replace_destination(failure_handling.destination)
        for shard_id, shard in self.shards:
            shard.shard.reconfigure(self._services, self.shards.sink_for(shard_id))

    async def _list_shards(self) -> Sequence[ShardInfo]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._lister.list_shards)

    # -- LeaseHolder: what the coordinator tells this member -------------------------------------

    def held(self) -> Mapping[str, int]:
        return {shard_id: shard.token for shard_id, shard in self.shards}

    def lease_taken(self, lease: Lease, stolen_from: str | None) -> None:
        self._taken.inc()
        shard = StreamShard(
            lease,
            self._settings,
            self._services,
            self._leases,
            self._client,
            self._executor,
            self.shards.sink_for(lease.shard_id),
            on_children=self.coordinator.children_found,
            on_data_lost=self._data_lost,
            on_behind=self._behind_changed,
            polled=self._polled,
            waits=self._waits,
        )
        self.shards.start(
            lease.shard_id, shard, shard.run(), ended=self._shard_ended, crashed=self._shard_crashed
        )

    def lease_refused(self, shard_id: str) -> None:
        shard = self.shards.get(shard_id)
        if shard is not None:
            shard.lease_lost()  # counted and logged when the shard has stopped

    # -- shards ending ---------------------------------------------------------------------------

    def _shard_ended(self, shard: StreamShard, task: asyncio.Task[Any]) -> None:
        if shard.lost:
            log.warning("mapping %s: lost the lease of %s to another member", self.mapping_id, shard.shard_id)
            self._lost.inc()
        if shard.owned:
            self.coordinator.in_background(self.coordinator.release(shard.shard_id, shard.token))
        if task.result():
            self.coordinator.discover_now()  # DynamoDB names children only in DescribeStream
        self.coordinator.take_now()

    def _shard_crashed(self, shard: StreamShard, delay: float) -> None:
        """A bug, not a function error: the lease is given up after `delay`, so the shard is read
        again from its checkpoint (by this member or another) instead of stalling or spinning."""
        self.coordinator.in_background(self.coordinator.release(shard.shard_id, shard.token, after=delay))

    def _polled(self, result: ReadResult) -> None:
        self._reads[read_result(result)].inc()
        if result.records:
            self._records_polled.inc(len(result.records))

    def _behind_changed(self) -> None:
        behind = [s.millis_behind_latest for _, s in self.shards if s.millis_behind_latest is not None]
        self._behind.set(max(behind, default=0))

    def _data_lost(self, shard_id: str) -> None:
        self._trimmed.inc()
        if self._status is not None:
            self.coordinator.in_background(self._record_data_loss(shard_id, time.time()))
        log.error(
            "mapping %s: the checkpoint of %s was trimmed by the stream's retention; reading resumed "
            "at TRIM_HORIZON: records between the checkpoint and the oldest one left were lost",
            self.mapping_id,
            shard_id,
        )

    async def _record_data_loss(self, shard_id: str, at: float) -> None:
        assert self._status is not None
        try:
            await self._status.publish(
                data_loss_key(self.mapping_id), {shard_id: {"data_lost_at": at}}, DATA_LOSS_KEPT_SECONDS, at
            )
        except StoreError as err:
            log.warning("mapping %s: cannot record the data loss of %s: %s", self.mapping_id, shard_id, err)

    def _failure_sink(self, shard_id: str) -> FailureSink[Any] | None:
        destination = self._failures.destination
        if destination is None:
            return None
        return StreamFailureSink(
            destination,
            self._flavor,
            shard_id,
            self._settings.stream_arn,
            self._failures.function_arn,
            self._failures.include_payload,
        )
