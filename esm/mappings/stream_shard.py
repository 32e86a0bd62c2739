"""One Kinesis / DynamoDB Streams shard this process holds the lease of: its reader, feeding a
`Shard` (esm.shard: lanes, batches, progress), and its lease-fenced checkpoint.

    WAITING_ON_PARENTS  until every parent's lease says SHARD_END (esm.ownership.parents)
    reading             one GetRecords at a time (on the event loop with esm's lean client, in
                        a thread with boto3's), at most 5 a second: the next as soon as that
                        allows while behind, one polling interval after the last read started
                        once caught up, longer (up to the idle interval) while reads keep coming
                        back empty (esm.sources.read_pacing); records go to the shard
    SHARD_END           no NextShardIterator and every lane drained: checkpoint SHARD_END, give
                        the lease up, and let the children start

Losing the lease (a renewal or a checkpoint refused: another member took it) stops reading and
the lanes at once; a batch in flight finishes, but nothing more is checkpointed. Shutdown
finishes the batches in flight and checkpoints them; the runner then releases the lease so a
peer takes it without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any

from esm.filtering import RecordFilter
from esm.mappings.stream_flavors import EventRecord, ShardReader, StreamFlavor
from esm.ownership.lease_checkpointer import LeaseCheckpointer
from esm.ownership.leases import Lease, LeaseStore
from esm.ownership.parents import wait_for_parents
from esm.shard.batching import BatchLimits, wait_either
from esm.shard.failures import FailurePolicy
from esm.shard.lane import Lane, LaneServices
from esm.shard.shard import Shard
from esm.shard.sink import FailureSink
from esm.shard.state import ShardState
from esm.shard.waits import REAL_WAITS, Waits
from esm.shard.windows import WindowFraming, WindowSettings
from esm.sources.read_pacing import idle_interval, next_read_wait, quiet_since
from esm.sources.stream_shards import ChildShard, ReadResult, StartPosition, StreamReadError

log = logging.getLogger(__name__)

# Prefetched records per shard are bounded by their estimated event bytes (over all lanes).
SHARD_BUFFER_LIMIT_BYTES = 8 * 1024 * 1024
# Waits after a failed read: retryable errors (service unavailable), and errors that need an
# operator (stream deleted, access denied), which are retried too, slowly, and reported.
RETRY_READ_DELAY_SECONDS = 1.0
BROKEN_READ_DELAY_SECONDS = 30.0
# How long the end of a shard's run waits for its reader to stop.
READER_STOP_WAIT_SECONDS = 5.0


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
    # The longest interval of a shard whose reads keep coming back empty (esm.sources.read_pacing).
    idle_polling_interval_seconds: float
    record_filter: RecordFilter
    report_batch_item_failures: bool
    policy: FailurePolicy
    # The function's execution role (Kinesis records' invokeIdentityArn); "" when not configured.
    role_arn: str = ""


class StreamShard:
    """Reads one leased shard into its `Shard` until it ends, the lease is lost, or shutdown."""

    def __init__(
        self,
        lease: Lease,
        settings: StreamShardSettings,
        services: LaneServices[EventRecord],
        store: LeaseStore,
        client: Any,
        executor: Executor,
        sink: FailureSink[EventRecord] | None,
        on_children: Callable[[Sequence[ChildShard]], None],
        on_data_lost: Callable[[str], None],
        on_behind: Callable[[], None],
        polled: Callable[[ReadResult], None],
        wall_clock: Callable[[], float] = time.time,
        waits: Waits = REAL_WAITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`wall_clock`: epoch seconds (watermarks, data loss); `clock`: monotonic seconds (pacing)."""
        self.shard_id = lease.shard_id
        self.settings = settings
        self.token = lease.token
        self.parents = lease.parent_shard_ids
        self._store = store
        self._client = client
        self._executor = executor
        self._on_children = on_children
        self._on_data_lost = on_data_lost
        self._on_behind = on_behind
        self._polled = polled
        self._wall_clock = wall_clock
        self._clock = clock
        self._waits = waits
        self._initial_checkpoint = lease.checkpoint
        self.checkpointer: LeaseCheckpointer[EventRecord] = LeaseCheckpointer(
            store,
            settings.namespace,
            lease.shard_id,
            settings.owner,
            lease.token,
            lease.checkpoint,
            settings.flavor.sequence_of,
            wall_clock,
            waits,
            on_refused=self.lease_lost,
        )
        self.shard: Shard[EventRecord] = Shard(
            lease.shard_id,
            services,
            self.checkpointer,
            lanes=settings.lanes,
            sink=sink,
            taken=self._taken,
            waiting_on_parents=bool(lease.parent_shard_ids),
            framing=self._window_framing() if settings.window_seconds > 0 else None,
        )
        self.buffered_bytes = 0
        self._room = asyncio.Event()
        self._continues_a_parent = False
        self.data_lost_at: float | None = None
        self.last_read_error: str | None = None
        self.millis_behind_latest: int | None = None
        # Epoch seconds up to which the shard has been read completely (tumbling windows).
        self.watermark = 0.0

    def _window_framing(self) -> Callable[[Lane[EventRecord]], WindowFraming[EventRecord]]:
        window = WindowSettings(
            seconds=self.settings.window_seconds,
            shard_id=self.shard_id,
            stream_arn=self.settings.stream_arn,
            watermark=lambda: self.watermark,
        )
        return partial(WindowFraming, settings=window)

    @property
    def state(self) -> ShardState:
        return self.shard.state

    @property
    def owned(self) -> bool:
        return self.checkpointer.owned

    @property
    def lost(self) -> bool:
        """The lease went to another member (renewal or checkpoint refused)."""
        return self.shard.life.lost or self.checkpointer.refused

    @property
    def ended(self) -> bool:
        return self.shard.ended

    def lease_lost(self) -> None:
        self.checkpointer.abandon()
        self.shard.lease_lost()

    def request_shutdown(self) -> None:
        self.shard.request_shutdown()

    async def run(self) -> bool:
        """Processes the shard; True when it reached its end and SHARD_END was checkpointed."""
        halt = self.shard.life.halt
        if self.shard.state is ShardState.WAITING_ON_PARENTS:
            continues = await wait_for_parents(
                self._store, self.settings.namespace, self.parents, halt, self._waits
            )
            if continues is None:
                return await self.shard.run()  # lost or stopped while waiting: it just settles
            self._continues_a_parent = continues
            self.shard.parents_done()
        reader = self.settings.flavor.make_reader(
            self._client,
            self.settings.stream_arn,
            self.shard_id,
            self._start_position(),
            time.monotonic,
            self.settings.polling_interval_seconds,
            self.settings.role_arn,
        )
        reading = asyncio.create_task(self._read_until_stopped(reader), name=f"read-{self.shard_id}")
        reading.add_done_callback(self._reading_done)
        try:
            ended = await self.shard.run(at_end=self.checkpointer.checkpoint_end)
        finally:
            reading.cancel()
            await asyncio.wait([reading], timeout=READER_STOP_WAIT_SECONDS)
        if reading.done() and not reading.cancelled() and reading.exception() is not None:
            raise RuntimeError(f"shard {self.shard_id}: its reader failed") from reading.exception()
        if ended:
            log.info("shard %s of %s: ended; every record processed", self.shard_id, self.settings.stream_arn)
        return ended

    def _reading_done(self, reading: asyncio.Task[None]) -> None:
        if not reading.cancelled() and reading.exception() is not None:
            self.shard.request_shutdown()  # a bug: let batches in flight finish, then restart the shard

    def _start_position(self) -> StartPosition:
        if self._initial_checkpoint is not None:
            return StartPosition.after(self._initial_checkpoint)
        if self._continues_a_parent:
            # The child of a shard this mapping read: from its first record, where the parent's end.
            return StartPosition.trim_horizon()
        # A shard this mapping starts with (its parents, if any, were never seen): as configured.
        return self.settings.start

    def _taken(self, size_bytes: int) -> None:
        self.buffered_bytes -= size_bytes
        self._room.set()

    async def _read_until_stopped(self, reader: ShardReader) -> None:
        halt = self.shard.life.halt
        quiet: float | None = None  # since when the reads have come back empty
        while not halt.is_set():
            if self.buffered_bytes >= SHARD_BUFFER_LIMIT_BYTES:
                self._room.clear()
                await wait_either(self._room, halt)
                continue
            read_started = self._wall_clock()
            started = self._clock()
            try:
                result: ReadResult = await reader.read_in(self._executor)
            except StreamReadError as err:
                delay = RETRY_READ_DELAY_SECONDS if err.retryable else BROKEN_READ_DELAY_SECONDS
                if str(err) != self.last_read_error:
                    log.error("shard %s: read failed (%s); retrying in %.0fs", self.shard_id, err, delay)
                self.last_read_error = str(err)
                if await self._waits.halted_within(halt, delay):
                    return
                continue
            self.last_read_error = None
            if halt.is_set():
                return  # lost or stopping while the read ran: its records are the next owner's
            self._accept(result, read_started)
            if result.shard_ended:
                self.shard.close()
                if result.child_shards:
                    self._on_children(result.child_shards)
                return
            caught_up = result.next_poll_delay_seconds > 0
            quiet = quiet_since(quiet, started, bool(result.records), caught_up, result.throttled)
            delay = result.next_poll_delay_seconds
            if quiet is not None and not result.throttled:
                delay = idle_interval(delay, self.settings.idle_polling_interval_seconds, started - quiet)
            wait = next_read_wait(started, self._clock(), delay, result.throttled)
            if wait > 0 and await self._waits.halted_within(halt, wait):
                return

    def _accept(self, result: ReadResult, read_started: float) -> None:
        if result.data_lost:
            self.data_lost_at = self._wall_clock()
            self._on_data_lost(self.shard_id)
        if (
            result.millis_behind_latest is not None
            and result.millis_behind_latest != self.millis_behind_latest
        ):
            # Only a change: the mapping's gauge is the maximum over its shards, worked out anew.
            self.millis_behind_latest = result.millis_behind_latest
            self._on_behind()
        self._polled(result)
        if result.records:
            entry_size = self.settings.flavor.entry_size
            sizes = [entry_size(entry) for entry in result.records]
            self.buffered_bytes += sum(sizes)
            self.shard.deliver(result.records, sizes)
        if result.next_poll_delay_seconds > 0 and not result.throttled:
            # Caught up: everything that arrived before this read has been read.
            self.watermark = read_started

    def status_report(self, owner: str) -> dict[str, Any]:
        fields = self.shard.status_fields()
        return {
            "owner": owner,
            **fields,
            "parents": list(self.parents),
            "checkpoint": self.checkpointer.written,
            "in_flight": self.shard.in_flight(self.settings.flavor.sequence_of),
            "millis_behind_latest": self.millis_behind_latest,
            "data_lost_at": self.data_lost_at,
            "last_error": self.last_read_error or fields["last_error"],
        }
