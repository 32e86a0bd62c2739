"""One Kinesis / DynamoDB Streams shard this process holds the lease of: its reader, its lanes,
and its fenced checkpoints.

    WAITING_ON_PARENTS  until every parent shard's lease says SHARD_END (or the parent is gone)
    reading             one GetRecords at a time (in a thread), records spread over the lanes;
                        re-read at once while behind, after the polling interval when caught up
    lanes               ParallelizationFactor shard consumers, each with its own buffer and one
                        batch in flight; records go to a lane by partition-key hash, so order is
                        kept per key
    checkpoint          the highest position below which every lane has completed
                        (esm.shard.lanes.CompletionTracker), written through the lease store,
                        fenced by (owner, token); a refused write means the lease is gone
    SHARD_END           no NextShardIterator and every lane drained: checkpoint SHARD_END, give
                        the lease up, and let the children start

Losing the lease (a renewal refused: another member took it) stops reading and the lanes at
once; a batch in flight finishes, but nothing more is checkpointed. Shutdown finishes the
batches in flight, checkpoints them, and releases the lease so a peer takes it without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from esm.filtering import RecordFilter
from esm.mappings.stream_flavors import EventRecord, ShardReader, StreamFlavor
from esm.ownership.leases import SHARD_END, Lease, LeaseStore
from esm.shard.batching import BatchLimits, RecordBuffer, wait_either
from esm.shard.failures import FailurePolicy
from esm.shard.lane import FailureSink, Invoker, ShardConsumer, ShardConsumerBase, ShardMetrics
from esm.shard.lanes import CompletionTracker, lane_for
from esm.shard.reporting import halted_within
from esm.shard.state import ShardState
from esm.shard.windows import WindowedShardConsumer
from esm.sources.stream_shards import ChildShard, ReadResult, StartPosition
from esm.stores import StoreError

log = logging.getLogger(__name__)

# Prefetched records per shard are bounded by their estimated event bytes (over all lanes).
SHARD_BUFFER_LIMIT_BYTES = 8 * 1024 * 1024
# Waits after a failed read: retryable errors (service unavailable), and errors that need an
# operator (stream deleted, access denied), which are retried too, slowly, and reported.
RETRY_READ_DELAY_SECONDS = 1.0
BROKEN_READ_DELAY_SECONDS = 30.0
# Waits between attempts to write a checkpoint to a store that cannot be reached.
STORE_RETRY_DELAYS_SECONDS = (0.2, 0.5, 1.0, 2.0)
# How often a shard waiting on its parents looks at their leases again.
PARENT_CHECK_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class StreamShardSettings:
    """A mapping's settings for each of its shards."""

    flavor: StreamFlavor
    stream_arn: str
    namespace: str
    owner: str
    start: StartPosition
    limits: BatchLimits
    lanes: int
    window_seconds: int
    polling_interval_seconds: float
    record_filter: RecordFilter
    report_batch_item_failures: bool
    policy: FailurePolicy
    # The function's execution role (Kinesis records' invokeIdentityArn); "" when not configured.
    role_arn: str = ""


@dataclass
class _LeaseHold:
    """The lease as this process holds it; `token` fences every write."""

    shard_id: str
    token: int
    parents: tuple[str, ...]
    checkpoint: str | None


class ShardCheckpointer:
    """Turns lane completions into the shard's checkpoint and writes it, fenced and in order."""

    def __init__(
        self,
        store: LeaseStore,
        settings: StreamShardSettings,
        hold: _LeaseHold,
        wall_clock: Callable[[], float],
        on_refused: Callable[[], None],
    ) -> None:
        self._store = store
        self._on_refused = on_refused
        self._settings = settings
        self._hold = hold
        self._wall_clock = wall_clock
        self.tracker = CompletionTracker(settings.lanes)
        # Per lane, the (sequence number, ticket) of each record dispatched and not yet completed.
        self._pending: list[deque[tuple[str, int]]] = [deque() for _ in range(settings.lanes)]
        self._lock = asyncio.Lock()
        self.written: str | None = hold.checkpoint
        self.refused = False

    def dispatched(self, lane: int, sequence: str) -> None:
        self._pending[lane].append((sequence, self.tracker.dispatched(lane, sequence)))

    async def completed_through(self, lane: int, sequence: str) -> bool:
        """The lane has completed every record up to the one with `sequence`; False if the lease
        is gone (the write was refused)."""
        pending = self._pending[lane]
        ticket = None
        while pending:
            seq, ticket = pending.popleft()
            if seq == sequence:
                break
        if ticket is not None:
            self.tracker.completed(lane, ticket)
        return await self._write(shard_end=False)

    async def shard_end(self) -> bool:
        return await self._write(shard_end=True)

    async def _write(self, shard_end: bool) -> bool:
        if self.refused:
            return False
        async with self._lock:
            # One write at a time, each of the latest position: a write is never behind the
            # stored checkpoint (the store would refuse it as stale).
            position = SHARD_END if shard_end else self.tracker.checkpoint
            if position is None or position == self.written:
                return True
            ok = await self._checkpoint(position)
            if not ok:
                # Another member holds the lease now (or the store stayed down): stop at once.
                self.refused = True
                self._on_refused()
                return False
            self.written = position
            return True

    async def _checkpoint(self, position: str) -> bool:
        """The fenced write; a store that cannot be reached is retried for a while, then the
        shard stops as if the lease were lost (it expires, and is taken and read again from the
        last checkpoint that was written)."""
        for delay in (*STORE_RETRY_DELAYS_SECONDS, None):
            try:
                return await self._store.checkpoint(
                    self._settings.namespace,
                    self._hold.shard_id,
                    self._settings.owner,
                    self._hold.token,
                    position,
                    self._wall_clock(),
                )
            except StoreError as err:
                if delay is None:
                    log.error(
                        "shard %s: cannot write its checkpoint (%s); stopping it", self._hold.shard_id, err
                    )
                    return False
                log.warning("shard %s: cannot write its checkpoint (%s); retrying", self._hold.shard_id, err)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns")


class _LaneSource:
    """ShardSource for one lane (esm.shard.lane.ShardSource)."""

    def __init__(self, shard: StreamShard, lane: int) -> None:
        self._shard = shard
        self._lane = lane
        self._flavor = shard.settings.flavor
        self._filter = shard.settings.record_filter

    def build_event(self, records: Sequence[EventRecord]) -> bytes:
        return self._flavor.build_event(records)

    def record_time(self, record: EventRecord) -> float:
        return self._flavor.time_of(record)

    def select(self, records: list[EventRecord]) -> list[EventRecord]:
        if self._filter.accepts_all:
            return records
        view, matches = self._flavor.filter_view, self._filter.matches
        return [record for record in records if matches(view(record))]

    def index_of(self, records: Sequence[EventRecord], identifier: Any) -> int | None:
        """Kinesis and DynamoDB itemIdentifier: the record's sequence number."""
        if not isinstance(identifier, str):
            return None
        sequence_of = self._flavor.sequence_of
        return next((i for i, record in enumerate(records) if sequence_of(record) == identifier), None)

    async def checkpoint_after(self, record: EventRecord) -> bool:
        return await self._shard.checkpointer.completed_through(self._lane, self._flavor.sequence_of(record))

    def taken(self, size_bytes: int) -> None:
        self._shard.buffered_bytes -= size_bytes
        self._shard.room.set()

    @property
    def owned(self) -> bool:
        return self._shard.owned


class StreamShard:
    """Processes one leased shard until it ends, the lease is lost, or shutdown."""

    def __init__(
        self,
        lease: Lease,
        settings: StreamShardSettings,
        store: LeaseStore,
        client: Any,
        executor: Executor,
        invoker: Invoker,
        metrics: ShardMetrics,
        make_failure_sink: Callable[[str], FailureSink[Any] | None],
        on_children: Callable[[Sequence[ChildShard]], None],
        on_data_lost: Callable[[str], None],
        on_behind: Callable[[], None],
        polled: Callable[[int], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.shard_id = lease.shard_id
        self.settings = settings
        self._store = store
        self._client = client
        self._executor = executor
        self._invoker = invoker
        self._metrics = metrics
        self._make_failure_sink = make_failure_sink
        self._on_children = on_children
        self._on_data_lost = on_data_lost
        self._on_behind = on_behind
        self._polled = polled
        self._wall_clock = wall_clock
        self.hold = _LeaseHold(lease.shard_id, lease.token, lease.parent_shard_ids, lease.checkpoint)
        self.checkpointer = ShardCheckpointer(store, settings, self.hold, wall_clock, self.lease_lost)
        self.lanes: list[ShardConsumerBase[Any]] = []
        self.buffered_bytes = 0
        self.room = asyncio.Event()
        self._stop = asyncio.Event()
        self._lost = False
        self.waiting_on_parents = bool(lease.parent_shard_ids)
        self._continues_a_parent = False
        self.ended = False
        self.data_lost_at: float | None = None
        self.last_read_error: str | None = None
        self.millis_behind_latest: int | None = None
        # Epoch seconds up to which the shard has been read completely (tumbling windows).
        self.watermark = 0.0

    @property
    def owned(self) -> bool:
        return not self._lost

    @property
    def lost(self) -> bool:
        """The lease went to another member (renewal or checkpoint refused)."""
        return self._lost

    @property
    def state(self) -> ShardState:
        if self.waiting_on_parents:
            return ShardState.WAITING_ON_PARENTS
        if not self.owned:
            return ShardState.LEASE_LOST
        if self.ended:
            return ShardState.SHARD_END
        if not self.lanes:
            return ShardState.INITIALIZING
        return self.lanes[0].state

    def lease_lost(self) -> None:
        if self._lost:
            return
        self._lost = True
        self._stop.set()
        for lane in self.lanes:
            lane.lease_lost()

    def request_shutdown(self) -> None:
        self._stop.set()
        for lane in self.lanes:
            lane.request_shutdown()

    async def run(self) -> bool:
        """Processes the shard; True when it reached its end and SHARD_END was checkpointed."""
        if not await self._wait_for_parents():
            return False
        start = self._start_position()
        reader = self.settings.flavor.make_reader(
            self._client,
            self.settings.stream_arn,
            self.shard_id,
            start,
            time.monotonic,
            self.settings.polling_interval_seconds,
            self.settings.role_arn,
        )
        self.lanes = [self._lane(index) for index in range(self.settings.lanes)]
        lane_tasks = [
            asyncio.create_task(lane.run(), name=f"shard-{self.shard_id}-lane-{index}")
            for index, lane in enumerate(self.lanes)
        ]
        try:
            await self._read_until_stopped(reader)
            await asyncio.gather(*lane_tasks)
        finally:
            for task in lane_tasks:
                task.cancel()
        if (
            self.owned
            and all(lane.reached_end for lane in self.lanes)
            and await self.checkpointer.shard_end()
        ):
            self.ended = True
            log.info("shard %s of %s: ended; every record processed", self.shard_id, self.settings.stream_arn)
            return True
        return False

    async def _wait_for_parents(self) -> bool:
        """WAITING_ON_PARENTS: a child starts only after each parent reached SHARD_END with its
        last record processed. A parent without a lease was gone from the stream before this
        mapping first listed it: nothing of it is left to read."""
        while self.hold.parents:
            leases = {lease.shard_id: lease for lease in await self._store.list(self.settings.namespace)}
            known = [parent for parent in self.hold.parents if parent in leases]
            self._continues_a_parent = bool(known)
            if all(leases[parent].is_finished for parent in known):
                break
            if await self._stopped_within(PARENT_CHECK_INTERVAL_SECONDS):
                return False
        self.waiting_on_parents = False
        return not self._stop.is_set()

    def _start_position(self) -> StartPosition:
        if self.hold.checkpoint is not None:
            return StartPosition.after(self.hold.checkpoint)
        if self._continues_a_parent:
            # The child of a shard this mapping read: from its first record, where the parent's end.
            return StartPosition.trim_horizon()
        # A shard this mapping starts with (its parents, if any, were never seen): as configured.
        return self.settings.start

    def _lane(self, index: int) -> ShardConsumerBase[Any]:
        source = _LaneSource(self, index)
        buffer: RecordBuffer[Any] = RecordBuffer(time.monotonic)
        s = self.settings
        name = self.shard_id if s.lanes == 1 else f"{self.shard_id}#{index}"
        sink = self._make_failure_sink(self.shard_id)
        args = (
            name,
            buffer,
            s.limits,
            source,
            self._invoker,
            s.policy,
            self._metrics,
            sink,
            s.report_batch_item_failures,
        )
        if s.window_seconds > 0:
            return WindowedShardConsumer(
                *args,
                window_seconds=s.window_seconds,
                stream_arn=s.stream_arn,
                watermark=lambda: self.watermark,
            )
        return ShardConsumer(*args)

    async def _read_until_stopped(self, reader: ShardReader) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            if self.buffered_bytes >= SHARD_BUFFER_LIMIT_BYTES:
                self.room.clear()
                await wait_either(self.room, self._stop)
                continue
            read_started = self._wall_clock()
            try:
                result: ReadResult = await loop.run_in_executor(self._executor, reader.read_blocking)
            except Exception as err:  # the readers raise typed errors; anything else is retried too
                delay = (
                    RETRY_READ_DELAY_SECONDS
                    if getattr(err, "retryable", False)
                    else BROKEN_READ_DELAY_SECONDS
                )
                if str(err) != self.last_read_error:
                    log.error("shard %s: read failed (%s); retrying in %.0fs", self.shard_id, err, delay)
                self.last_read_error = str(err)
                if await self._stopped_within(delay):
                    return
                continue
            self.last_read_error = None
            if self._stop.is_set():
                return  # lost or stopping while the read ran: its records are the next owner's
            self._accept(result, read_started)
            if result.shard_ended:
                for lane in self.lanes:
                    lane.buffer.close()
                if result.child_shards:
                    self._on_children(result.child_shards)
                return
            if result.next_poll_delay_seconds > 0 and await self._stopped_within(
                result.next_poll_delay_seconds
            ):
                return

    def _accept(self, result: ReadResult, read_started: float) -> None:
        if result.data_lost:
            self.data_lost_at = self._wall_clock()
            self._on_data_lost(self.shard_id)
        if result.millis_behind_latest is not None:
            self.millis_behind_latest = result.millis_behind_latest
            self._on_behind()
        if result.records:
            self._polled(len(result.records))
        flavor, lanes = self.settings.flavor, self.settings.lanes
        per_lane: list[tuple[list[EventRecord], list[int]]] = [([], []) for _ in range(lanes)]
        for entry in result.records:
            index = 0 if lanes == 1 else lane_for(flavor.lane_key_of(entry), lanes)
            size = flavor.entry_size(entry)
            self.checkpointer.dispatched(index, flavor.sequence_of(entry))
            per_lane[index][0].append(entry)
            per_lane[index][1].append(size)
            self.buffered_bytes += size
        for lane, (records, sizes) in zip(self.lanes, per_lane, strict=True):
            lane.buffer.extend(records, sizes)
        if result.next_poll_delay_seconds > 0 and not result.throttled:
            # Caught up: everything that arrived before this read has been read.
            self.watermark = read_started

    async def _stopped_within(self, seconds: float) -> bool:
        return await halted_within(self._stop, seconds)

    def status_report(self, owner: str) -> dict[str, Any]:
        in_flight = [lane.current for lane in self.lanes if lane.current]
        sequence_of = self.settings.flavor.sequence_of
        first_lane = self.lanes[0] if self.lanes else None
        return {
            "owner": owner,
            "state": self.state.value,
            "parents": list(self.hold.parents),
            "checkpoint": self.checkpointer.written,
            "lanes": self.settings.lanes,
            "buffered": sum(len(lane.buffer) for lane in self.lanes),
            "in_flight": [
                {"first": sequence_of(batch[0]), "last": sequence_of(batch[-1]), "records": len(batch)}
                for batch in in_flight
            ],
            "millis_behind_latest": self.millis_behind_latest,
            "data_lost_at": self.data_lost_at,
            "last_error": self.last_read_error
            or next((lane.last_error for lane in self.lanes if lane.last_error), None),
            "last_processing_result": first_lane.last_processing_result
            if first_lane
            else "No records processed",
        }
