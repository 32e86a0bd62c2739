"""Runs one Kinesis or DynamoDB Streams mapping in this process: shard discovery, the lease
loop, and one `StreamShard` per shard this process holds the lease of.

Ownership is KCL's lease table, kept in the store (esm.ownership.leases): every poller process, on
this host or another, is a member; the members share the shards through it.

- Discovery lists the stream's shards every ShardDiscoveryIntervalSeconds (and at once when a
  shard ends, since its children are then known) and creates a lease for each new one; the
  lease of a finished shard that retention removed from the stream is deleted.
- The lease loop runs every third of LeaseDurationSeconds: it renews the leases held (a refused
  renewal means another member took the lease: that shard stops at once), then takes what
  `LeaseTaker` plans: unowned and expired leases first, else one lease stolen from the busiest
  member, toward an even spread.
- A member that stops renewing (killed, paused, partitioned away) loses its leases when they
  expire; its checkpoint writes are refused from then on, since the store fences them by
  owner and token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from esm.destinations import Destination
from esm.mappings.kafka import SHARD_RESTART_CAP_SECONDS, FailureHandling
from esm.mappings.stream_failures import StreamFailureSink
from esm.mappings.stream_flavors import StreamFlavor
from esm.mappings.stream_shard import StreamShard, StreamShardSettings
from esm.metrics import Metrics
from esm.ownership.lease_taker import LeaseTaker
from esm.ownership.leases import Lease, LeaseStore, lease_namespace
from esm.shard.lane import FailureSink, Invoker, ShardMetrics
from esm.sources.stream_discovery import ShardLister
from esm.sources.stream_shards import ChildShard
from esm.stores import StoreError
from esm.stores.status import DATA_LOSS_KEPT_SECONDS, ShardStatusStore, data_loss_key

__all__ = ["LeaseTiming", "StreamMappingRunner", "lease_namespace"]

log = logging.getLogger(__name__)

# How long shutdown waits for a cancelled task to end (a bounded wait: shutdown never hangs).
CANCEL_WAIT_SECONDS = 5.0
# Threads for the blocking boto3 calls of one mapping (one GetRecords per shard at a time).
READER_THREADS = 32


@dataclass(frozen=True)
class LeaseTiming:
    duration_seconds: float = 10.0
    discovery_interval_seconds: float = 30.0

    @property
    def renew_interval_seconds(self) -> float:
        return self.duration_seconds / 3


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
    ) -> None:
        """`status`: where a shard whose checkpoint was trimmed is recorded for `esm status`."""
        self.mapping_id = mapping_id
        self._status = status
        self._flavor = flavor
        self._settings = settings
        self._client = client
        self._lister = lister
        self._leases = leases
        self._timing = timing
        self._invoker = invoker
        self._failures = failure_handling
        self._taker = LeaseTaker()
        self._executor = ThreadPoolExecutor(READER_THREADS, thread_name_prefix=f"esm-{mapping_id[:8]}")
        self._shards: dict[str, tuple[StreamShard, asyncio.Task[bool]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        # Unexpected failures per shard, for the delay before its lease is given up.
        self._crashes: dict[str, int] = {}
        self._discover_now = asyncio.Event()
        # Finished shards missing from the last listing (see _forget_gone_shards).
        self._gone_last_time: set[str] = set()
        self._discovered = asyncio.Event()
        self._take_now = asyncio.Event()
        self._stopping = False
        self._shard_metrics = ShardMetrics.of_mapping(metrics, mapping_id)
        self._owned = metrics.partitions_owned.labels(mapping_id)
        self._taken = metrics.leases_taken.labels(mapping_id)
        self._lost = metrics.leases_lost.labels(mapping_id)
        self._trimmed = metrics.trimmed_checkpoints.labels(mapping_id)
        self._behind = metrics.millis_behind_latest.labels(mapping_id)
        self._polled = metrics.records_polled.labels(mapping_id)

    @property
    def namespace(self) -> str:
        return self._settings.namespace

    @property
    def owner(self) -> str:
        return self._settings.owner

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._discovery_loop(), name=f"discovery-{self.mapping_id[:8]}"),
            asyncio.create_task(self._lease_loop(), name=f"leases-{self.mapping_id[:8]}"),
        ]

    async def shutdown(self, deadline: float) -> None:
        """Lets the batches in flight finish until `deadline` (monotonic), checkpoints them, and
        releases the leases so the other members take them without waiting for expiry."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CANCEL_WAIT_SECONDS)
        shards = list(self._shards.values())
        for shard, _ in shards:
            shard.request_shutdown()
        shard_tasks = [task for _, task in shards]
        if shard_tasks:
            _, pending = await asyncio.wait(shard_tasks, timeout=max(0.0, deadline - time.monotonic()))
            for unfinished in pending:
                unfinished.cancel()
            if pending:
                log.warning(
                    "mapping %s: %d shards still had batches in flight after the grace period; "
                    "they will be re-delivered",
                    self.mapping_id,
                    len(pending),
                )
                await asyncio.wait(pending, timeout=CANCEL_WAIT_SECONDS)
        for shard, _ in shards:
            if shard.owned and not shard.ended:
                await self._release(shard)
        self._shards.clear()
        self._owned.set(0)
        self._executor.shutdown(wait=False, cancel_futures=True)
        destination: Destination | None = self._failures.destination
        if destination is not None:
            await destination.close()

    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]:
        return {shard_id: shard.status_report(owner) for shard_id, (shard, _) in self._shards.items()}

    # -- discovery ---------------------------------------------------------------------------

    async def _discovery_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                shards = await loop.run_in_executor(self._executor, self._lister.list_shards)
                leases = await self._leases.list(self.namespace)
                known = {lease.shard_id for lease in leases}
                for shard in shards:  # parents come before their children
                    if shard.shard_id not in known:
                        await self._leases.ensure(self.namespace, shard.shard_id, shard.parent_shard_ids)
                await self._forget_gone_shards(leases, {shard.shard_id for shard in shards})
                self._discovered.set()
                self._take_now.set()
            except StoreError as err:
                log.warning("mapping %s: cannot record the shards in the store: %s", self.mapping_id, err)
            except Exception as err:  # boto3 errors, translated or not: retried at the next round
                log.error(
                    "mapping %s: cannot list the shards of %s: %s",
                    self.mapping_id,
                    self._settings.stream_arn,
                    err,
                )
            self._discover_now.clear()
            await _until_set(self._discover_now, self._timing.discovery_interval_seconds)

    async def _forget_gone_shards(self, leases: Sequence[Lease], listed: set[str]) -> None:
        """Deletes the leases of finished shards the stream no longer has (retention removed
        them), so the lease table does not grow with every reshard. A lease goes only when its
        shard was missing from two listings in a row (a listing is never trusted alone) and
        every child of it has a checkpoint (a child without one still asks whether it
        continues a parent of this mapping)."""
        gone = {
            lease.shard_id
            for lease in leases
            if lease.is_finished
            and lease.shard_id not in listed
            and all(
                child.checkpoint is not None for child in leases if lease.shard_id in child.parent_shard_ids
            )
        }
        for shard_id in gone & self._gone_last_time:
            if await self._leases.delete_finished(self.namespace, shard_id):
                log.info(
                    "mapping %s: %s is gone from the stream; its lease is deleted", self.mapping_id, shard_id
                )
        self._gone_last_time = gone

    def _children_found(self, children: Sequence[ChildShard]) -> None:
        """A shard ended and named its children: create their leases now rather than at the next
        listing, so they start as soon as their parents are done."""
        self._in_background(self._ensure_children(children))

    async def _ensure_children(self, children: Sequence[ChildShard]) -> None:
        try:
            for child in children:
                await self._leases.ensure(self.namespace, child.shard_id, child.parent_shard_ids)
        except StoreError as err:
            log.warning("mapping %s: cannot record child shards: %s", self.mapping_id, err)
        self._discover_now.set()
        self._take_now.set()

    # -- leases ------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        await self._discovered.wait()
        while not self._stopping:
            try:
                await self._renew()
                await self._take()
            except StoreError as err:
                log.warning("mapping %s: lease store unavailable: %s", self.mapping_id, err)
            self._take_now.clear()
            await _until_set(self._take_now, self._timing.renew_interval_seconds)

    async def _renew(self) -> None:
        now = time.time()
        for shard_id, (shard, _) in list(self._shards.items()):
            renewed = await self._leases.renew(
                self.namespace, shard_id, self.owner, shard.hold.token, self._timing.duration_seconds, now
            )
            if not renewed:
                shard.lease_lost()  # counted and logged when the shard has stopped

    async def _take(self) -> None:
        if self._stopping:
            return
        now = time.time()
        leases = await self._leases.list(self.namespace)
        for lease in self._taker.plan(leases, self.owner, (), now):
            if lease.shard_id in self._shards:
                continue  # my own lease, expired before I renewed it: renewed next round
            taken = await self._leases.take(
                self.namespace, lease.shard_id, self.owner, lease.token, self._timing.duration_seconds, now
            )
            if taken is None:
                continue  # someone else changed it since it was read
            stolen = lease.owner is not None and lease.owner != self.owner and not lease.is_expired(now)
            log.info(
                "mapping %s: took %s%s",
                self.mapping_id,
                lease.shard_id,
                f" from {lease.owner}" if stolen else "",
            )
            self._taken.inc()
            self._start_shard(taken)

    def _start_shard(self, lease: Any) -> None:
        shard = StreamShard(
            lease,
            self._settings,
            self._leases,
            self._client,
            self._executor,
            self._invoker,
            self._shard_metrics,
            make_failure_sink=self._failure_sink,
            on_children=self._children_found,
            on_data_lost=self._data_lost,
            on_behind=self._behind_changed,
            polled=self._polled.inc,
        )
        task = asyncio.create_task(shard.run(), name=f"shard-{lease.shard_id}")
        task.add_done_callback(partial(self._shard_done, shard))
        self._shards[lease.shard_id] = (shard, task)
        self._owned.set(len(self._shards))

    def _shard_done(self, shard: StreamShard, task: asyncio.Task[bool]) -> None:
        entry = self._shards.get(shard.shard_id)
        if entry is None or entry[0] is not shard or self._stopping:
            return
        del self._shards[shard.shard_id]
        self._owned.set(len(self._shards))
        if shard.lost:
            log.warning("mapping %s: lost the lease of %s to another member", self.mapping_id, shard.shard_id)
            self._lost.inc()
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # A bug, not a function error: give the lease up after a delay that grows while the
            # shard keeps failing, so it is read again from its checkpoint (by this member or
            # another) instead of stalling or spinning.
            crashes = self._crashes.get(shard.shard_id, 0) + 1
            self._crashes[shard.shard_id] = crashes
            delay = min(SHARD_RESTART_CAP_SECONDS, 2.0 ** (crashes - 1))
            log.error(
                "mapping %s: shard %s failed; releasing its lease in %.0fs",
                self.mapping_id,
                shard.shard_id,
                delay,
                exc_info=error,
            )
            self._in_background(self._release(shard, after=delay))
            return
        if shard.owned:
            self._in_background(self._release(shard))
        if task.result():
            self._discover_now.set()  # DynamoDB names children only in DescribeStream
        self._take_now.set()

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # referenced until done: the loop keeps only weak references
        task.add_done_callback(self._background.discard)

    async def _release(self, shard: StreamShard, after: float = 0.0) -> None:
        if after > 0:
            await asyncio.sleep(after)
        try:
            await self._leases.release(self.namespace, shard.shard_id, self.owner, shard.hold.token)
        except StoreError as err:
            log.warning(
                "mapping %s: cannot release %s (it expires instead): %s", self.mapping_id, shard.shard_id, err
            )

    def _behind_changed(self) -> None:
        behind = [
            s.millis_behind_latest for s, _ in self._shards.values() if s.millis_behind_latest is not None
        ]
        self._behind.set(max(behind, default=0))

    def _data_lost(self, shard_id: str) -> None:
        self._trimmed.inc()
        if self._status is not None:
            self._in_background(self._record_data_loss(shard_id, time.time()))
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


async def _until_set(event: asyncio.Event, timeout: float) -> None:
    """Waits for `event`, at most `timeout` seconds. (asyncio.timeout rather than wait_for: on
    Python 3.11 wait_for can swallow a cancellation that races its timeout, and these loops must
    stop when shutdown cancels them.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
