"""StreamShard on the real SQLite lease store, with a scripted shard reader and a recording
invoker standing in for Kinesis and the function (tests/mappings/stream_fakes.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from shard_metrics import Count, counting_metrics

from esm.filtering import RecordFilter, compile_filters
from esm.mappings import stream_shard
from esm.mappings.stream_flavors import EventRecord, StreamRecordFormat
from esm.mappings.stream_shard import StreamShard, StreamShardSettings
from esm.ownership.lease_checkpointer import STORE_RETRY_DELAYS_SECONDS
from esm.ownership.leases import SHARD_END, Lease, LeaseStore, lease_namespace
from esm.shard.batching import BatchLimits
from esm.shard.failures import FailurePolicy
from esm.shard.lane import LaneServices
from esm.shard.lanes import lane_for
from esm.shard.state import ShardState
from esm.sources.kinesis import KinesisAccessDeniedError, KinesisReadError, KinesisUnavailableError
from esm.sources.stream_shards import ChildShard, ReadResult, StartPosition
from esm.stores import Store, StoreUnavailableError, open_store

from .stream_fakes import (
    STREAM_ARN,
    FakeStream,
    ObservedLeases,
    RecordingInvoker,
    ShortWaits,
    entry,
    event_ids,
    lease_of,
    sequence,
    until,
)

NAMESPACE = lease_namespace("mapping-1", STREAM_ARN)
OWNER = "me"
TTL = 60.0
SHARD = "shardId-000000000000"
CHILD = "shardId-000000000001"
PARENT_DONE = "shardId-000000000009"  # a parent this mapping read to its end


class Harness:
    """Starts StreamShards of one mapping against the store, the fake stream and the invoker,
    and stops whatever is left at the end of the test."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stream = FakeStream()
        self.invoker = RecordingInvoker()
        self.executor = ThreadPoolExecutor(4)
        self.metrics, self.counts = counting_metrics()
        self.behind_changes: list[int | None] = []
        self.data_lost: list[str] = []
        self.children: list[ChildShard] = []
        self.waits = ShortWaits()
        self._running: list[tuple[StreamShard, asyncio.Task[bool]]] = []

    @property
    def leases(self) -> LeaseStore:
        return self.store.leases

    def settings(
        self,
        lanes: int = 1,
        start: StartPosition | None = None,
        record_filter: RecordFilter | None = None,
        batch_size: int = 10,
        idle_polling_interval: float = 0.01,
    ) -> StreamShardSettings:
        return StreamShardSettings(
            flavor=self.stream.flavor,
            stream_arn=STREAM_ARN,
            namespace=NAMESPACE,
            owner=OWNER,
            start=start or StartPosition.trim_horizon(),
            limits=BatchLimits(batch_size, 0.0),
            lanes=lanes,
            window_seconds=0,
            polling_interval_seconds=0.01,
            idle_polling_interval_seconds=idle_polling_interval,
            record_filter=record_filter or compile_filters([]),
            report_batch_item_failures=False,
            policy=FailurePolicy(),
        )

    async def held(
        self, shard_id: str = SHARD, parents: Sequence[str] = (), checkpoint: str | None = None
    ) -> Lease:
        """The shard's lease, taken by OWNER (after writing `checkpoint`, if given)."""
        lease = await self.leases.ensure(NAMESPACE, shard_id, parents)
        taken = await self.leases.take(NAMESPACE, shard_id, OWNER, lease.token, TTL, time.time())
        assert taken is not None
        if checkpoint is not None:
            assert await self.leases.checkpoint(
                NAMESPACE, shard_id, OWNER, taken.token, checkpoint, time.time()
            )
        return await lease_of(self.leases, NAMESPACE, shard_id)

    def start(
        self,
        lease: Lease,
        settings: StreamShardSettings | None = None,
        leases: LeaseStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> tuple[StreamShard, asyncio.Task[bool]]:
        settings = settings or self.settings()
        services: LaneServices[EventRecord] = LaneServices(
            format=StreamRecordFormat(settings.flavor, settings.record_filter),
            invoker=self.invoker,
            policy=settings.policy,
            metrics=self.metrics,
            limits=settings.limits,
            report_batch_item_failures=settings.report_batch_item_failures,
            waits=self.waits,
        )
        shard = StreamShard(
            lease,
            settings,
            services,
            leases or self.leases,
            None,
            self.executor,
            None,
            on_children=self.children.extend,
            on_data_lost=self.data_lost.append,
            on_behind=lambda: self.behind_changes.append(shard.millis_behind_latest),
            polled=lambda count: None,
            waits=self.waits,
            clock=clock,
        )
        task = asyncio.create_task(shard.run())
        self._running.append((shard, task))
        return shard, task

    async def checkpoint(self, shard_id: str = SHARD) -> str | None:
        return (await lease_of(self.leases, NAMESPACE, shard_id)).checkpoint

    @property
    def delivered_count(self) -> float:
        count: Count = self.counts["records_delivered"]
        return count.value

    async def stop(self) -> None:
        self.invoker.release_all()
        self.stream.release_pauses()
        for shard, _ in self._running:
            shard.request_shutdown()
        tasks = [task for _, task in self._running]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
async def harness(sqlite_store_url: str) -> AsyncIterator[Harness]:
    store = open_store(sqlite_store_url)
    running = Harness(store)
    try:
        yield running
    finally:
        await running.stop()
        await store.close()


def keys_by_lane(lanes: int) -> list[str]:
    """One partition key per lane, lane 0 first."""
    by_lane: dict[int, str] = {}
    for candidate in (f"key-{i}" for i in range(100)):
        by_lane.setdefault(lane_for(candidate, lanes), candidate)
    assert len(by_lane) == lanes
    return [by_lane[lane] for lane in range(lanes)]


async def test_records_are_delivered_in_order_and_checkpointed_to_the_lease(harness: Harness) -> None:
    harness.stream.script(
        SHARD,
        ReadResult([entry(SHARD, n) for n in (1, 2, 3)]),
        ReadResult([entry(SHARD, n) for n in (4, 5)]),
    )
    lease = await harness.held()
    shard, _ = harness.start(lease, harness.settings(batch_size=2))

    await until(lambda: _checkpoint_is(harness, sequence(5)), "records 1-5 are checkpointed")

    assert harness.invoker.delivered() == event_ids(SHARD, [1, 2, 3, 4, 5])
    assert all(len(batch) <= 2 for batch in harness.invoker.batches)
    stored = await lease_of(harness.leases, NAMESPACE, SHARD)
    assert (stored.owner, stored.token, stored.checkpoint) == (OWNER, lease.token, sequence(5))
    assert shard.status_report(OWNER)["checkpoint"] == sequence(5)


async def test_an_ended_shard_is_drained_then_checkpointed_at_shard_end(harness: Harness) -> None:
    children = (ChildShard(CHILD, (SHARD,)),)
    harness.stream.script(
        SHARD, ReadResult([entry(SHARD, n) for n in (1, 2, 3)], shard_ended=True, child_shards=children)
    )
    shard, task = harness.start(await harness.held(), harness.settings(batch_size=2))

    assert await asyncio.wait_for(task, 5) is True

    assert harness.invoker.delivered() == event_ids(SHARD, [1, 2, 3])
    assert await harness.checkpoint() == SHARD_END
    assert shard.ended and shard.state is ShardState.SHUT_DOWN
    assert harness.children == list(children)  # announced so the runner can lease them


async def test_parallel_lanes_keep_key_order_and_checkpoint_only_the_completed_prefix(
    harness: Harness,
) -> None:
    # Records 1..9 go to lanes 0, 1, 2, 0, 1, 2, ... by key; lane 1 (records 2, 5, 8) is held.
    keys = keys_by_lane(3)
    key_of = {n: keys[(n - 1) % 3] for n in range(1, 10)}
    harness.stream.script(
        SHARD,
        ReadResult([entry(SHARD, n, key_of[n]) for n in range(1, 7)]),
        ReadResult([entry(SHARD, n, key_of[n]) for n in range(7, 10)]),
    )
    slow_lane = harness.invoker.hold(keys[1])
    harness.start(await harness.held(), harness.settings(lanes=3))

    await until(lambda: harness.delivered_count == 6, "lanes 0 and 2 complete records 1, 3, 4, 6, 7, 9")
    # Record 2 (lane 1) is still in flight: nothing past record 1 may be checkpointed.
    assert await harness.checkpoint() == sequence(1)

    slow_lane.set()
    await until(
        lambda: _checkpoint_is(harness, sequence(9)), "the checkpoint moves to record 9 once lane 1 is done"
    )
    for batch in harness.invoker.batches:
        assert len({record["kinesis"]["partitionKey"] for record in batch}) == 1, "one lane per batch"
    for key in keys:
        numbers = [
            record["kinesis"]["sequenceNumber"]
            for batch in harness.invoker.batches
            for record in batch
            if record["kinesis"]["partitionKey"] == key
        ]
        assert numbers == [sequence(n) for n in range(1, 10) if key_of[n] == key]


async def _checkpoint_is(harness: Harness, expected: str) -> bool:
    return await harness.checkpoint() == expected


async def _take_away(harness: Harness, shard_id: str = SHARD) -> None:
    """Another member takes the lease (a steal: the token goes up)."""
    current = await lease_of(harness.leases, NAMESPACE, shard_id)
    assert await harness.leases.take(NAMESPACE, shard_id, "thief", current.token, TTL, time.time())


async def test_a_lease_taken_away_refuses_the_next_checkpoint(harness: Harness) -> None:
    pause = harness.stream.pause()
    harness.stream.script(
        SHARD,
        ReadResult([entry(SHARD, n) for n in (1, 2)]),
        pause,
        ReadResult([entry(SHARD, n) for n in (3, 4)]),
    )
    shard, _ = harness.start(await harness.held())
    await until(lambda: _checkpoint_is(harness, sequence(2)), "records 1-2 are checkpointed")

    await _take_away(harness)
    pause.set()

    await until(lambda: not shard.owned, "the refused checkpoint marks the lease lost")
    assert harness.invoker.delivered() == event_ids(SHARD, [1, 2, 3, 4])  # invoked, not checkpointed
    stored = await lease_of(harness.leases, NAMESPACE, SHARD)
    assert (stored.owner, stored.checkpoint) == ("thief", sequence(2))
    assert shard.lost and shard.state in (ShardState.LEASE_LOST, ShardState.SHUT_DOWN)
    assert shard.checkpointer.written == sequence(2)


async def test_a_refused_checkpoint_stops_the_shard(harness: Harness) -> None:
    pause = harness.stream.pause()
    harness.stream.script(
        SHARD,
        ReadResult([entry(SHARD, n) for n in (1, 2)]),
        pause,
        ReadResult([entry(SHARD, n) for n in (3, 4)]),
    )
    shard, task = harness.start(await harness.held())
    await until(lambda: _checkpoint_is(harness, sequence(2)), "records 1-2 are checkpointed")

    await _take_away(harness)
    pause.set()

    # Well within a renewal interval: the refusal itself must stop the reading.
    assert await asyncio.wait_for(task, 1) is False
    assert harness.invoker.delivered() == event_ids(SHARD, [1, 2, 3, 4])
    assert shard.checkpointer.written == sequence(2)


async def test_a_child_waits_until_its_parent_lease_reaches_shard_end(harness: Harness) -> None:
    await harness.leases.ensure(NAMESPACE, SHARD, ())
    parent = await harness.leases.take(NAMESPACE, SHARD, "other", 0, TTL, time.time())
    assert parent is not None
    harness.stream.script(CHILD, ReadResult([entry(CHILD, 1)]))
    observed = ObservedLeases(harness.leases, harness.stream.log)
    shard, _ = harness.start(await harness.held(CHILD, parents=[SHARD]), leases=observed)

    await until(lambda: observed.lists >= 3, "the child has looked at its parent's lease 3 times")
    assert harness.stream.opened == []
    assert shard.status_report(OWNER)["state"] == ShardState.WAITING_ON_PARENTS.value

    assert await harness.leases.checkpoint(NAMESPACE, SHARD, "other", parent.token, SHARD_END, time.time())
    await until(lambda: harness.invoker.delivered() == event_ids(CHILD, [1]), "the child is read")
    assert harness.stream.opened_shards() == [CHILD]


@pytest.mark.parametrize("parent_lease", ["absent", "at SHARD_END"])
async def test_a_child_whose_parent_is_done_or_unknown_starts_at_once(
    harness: Harness, parent_lease: str
) -> None:
    if parent_lease == "at SHARD_END":
        await harness.held(SHARD, checkpoint=SHARD_END)
    observed = ObservedLeases(harness.leases, harness.stream.log)
    harness.start(await harness.held(CHILD, parents=[SHARD]), leases=observed)

    await until(lambda: harness.stream.opened_shards() == [CHILD], "the child's reader is opened")
    assert observed.lists == 1  # one look at the parents, no wait


@pytest.mark.parametrize(
    ("parents", "checkpoint", "mapping_start", "expected"),
    [
        ((), None, StartPosition.latest(), StartPosition.latest()),
        ((), None, StartPosition.at_timestamp(1700000000.0), StartPosition.at_timestamp(1700000000.0)),
        ((), sequence(7), StartPosition.latest(), StartPosition.after(sequence(7))),
        (("shardId-gone",), None, StartPosition.latest(), StartPosition.latest()),
        ((PARENT_DONE,), None, StartPosition.latest(), StartPosition.trim_horizon()),
        ((PARENT_DONE,), sequence(7), StartPosition.latest(), StartPosition.after(sequence(7))),
    ],
    ids=[
        "root-latest",
        "root-at-timestamp",
        "root-checkpointed",
        "parent-never-seen",
        "child",
        "child-checkpointed",
    ],
)
async def test_where_a_shard_starts_reading(
    harness: Harness,
    parents: tuple[str, ...],
    checkpoint: str | None,
    mapping_start: StartPosition,
    expected: StartPosition,
) -> None:
    await harness.held(PARENT_DONE, checkpoint=SHARD_END)
    lease = await harness.held(SHARD, parents=parents, checkpoint=checkpoint)
    harness.start(lease, harness.settings(start=mapping_start))

    await until(lambda: bool(harness.stream.opened), "the reader is opened")
    assert harness.stream.opened[0].start == expected


async def test_lost_data_is_reported(harness: Harness) -> None:
    harness.stream.script(SHARD, ReadResult([entry(SHARD, 1)], data_lost=True))
    before = time.time()
    shard, _ = harness.start(await harness.held())

    await until(lambda: harness.delivered_count == 1, "the records after the gap are delivered")
    assert harness.data_lost == [SHARD]
    lost_at = shard.status_report(OWNER)["data_lost_at"]
    assert lost_at is not None and before <= lost_at <= time.time()


@pytest.mark.parametrize(
    ("error", "delay_used"),
    [
        (KinesisUnavailableError("GetRecords: service unavailable"), "RETRY_READ_DELAY_SECONDS"),
        (KinesisAccessDeniedError("GetRecords: access denied"), "BROKEN_READ_DELAY_SECONDS"),
    ],
    ids=["retryable", "needs-an-operator"],
)
async def test_a_failed_read_is_reported_and_retried_after_its_delay(
    harness: Harness, error: KinesisReadError, delay_used: str
) -> None:
    retried = harness.stream.pause()
    reader = harness.stream.script(SHARD, error, retried, ReadResult([entry(SHARD, 1)]))
    shard, _ = harness.start(await harness.held())

    await until(lambda: reader.reads == 2, "the read is retried")
    assert shard.status_report(OWNER)["last_error"] == str(error)
    assert harness.waits.waited[0] == getattr(stream_shard, delay_used)  # the delay its kind calls for

    retried.set()
    await until(lambda: harness.delivered_count == 1, "the record is delivered")
    assert shard.status_report(OWNER)["last_error"] is None


async def test_records_dropped_by_the_filter_still_move_the_checkpoint(harness: Harness) -> None:
    keep = compile_filters([{"data": {"keep": [True]}}], json_fields=("data",))
    wanted = {1: True, 2: False, 3: True, 4: False, 5: False}
    harness.stream.script(SHARD, ReadResult([entry(SHARD, n, data={"keep": k}) for n, k in wanted.items()]))
    harness.start(await harness.held(), harness.settings(record_filter=keep))

    await until(lambda: _checkpoint_is(harness, sequence(5)), "the checkpoint passes the dropped records")
    assert harness.invoker.delivered() == event_ids(SHARD, [1, 3])
    assert harness.counts["records_filtered"].value == 3


class FlakyCheckpoints:
    """The real lease store, except that its next `failures` checkpoint writes raise StoreError."""

    def __init__(self, inner: LeaseStore, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def checkpoint(self, *args: Any) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("store down (test)")
        return await self._inner.checkpoint(*args)


async def test_a_checkpoint_write_survives_a_store_blip(harness: Harness) -> None:
    harness.stream.script(SHARD, ReadResult([entry(SHARD, n) for n in (1, 2)]))
    flaky = FlakyCheckpoints(harness.leases, failures=2)
    shard, _ = harness.start(await harness.held(), leases=cast(LeaseStore, flaky))

    await until(lambda: _checkpoint_is(harness, sequence(2)), "records 1-2 are checkpointed")
    assert shard.owned and flaky.failures == 0
    assert [w for w in harness.waits.waited if w in STORE_RETRY_DELAYS_SECONDS] == [0.2, 0.5]


async def test_a_store_down_for_good_stops_the_shard_without_moving_the_checkpoint(harness: Harness) -> None:
    harness.stream.script(SHARD, ReadResult([entry(SHARD, n) for n in (1, 2)]))
    flaky = FlakyCheckpoints(harness.leases, failures=1000)
    shard, task = harness.start(await harness.held(), leases=cast(LeaseStore, flaky))

    assert await asyncio.wait_for(task, 5) is False
    assert shard.lost
    assert await harness.checkpoint() is None
    assert [w for w in harness.waits.waited if w in STORE_RETRY_DELAYS_SECONDS] == list(
        STORE_RETRY_DELAYS_SECONDS
    )


async def test_the_mapping_hears_of_millis_behind_latest_only_when_it_changes(harness: Harness) -> None:
    """The mapping's gauge is a maximum over its shards: an idle shard reading 0 again and again
    must not make it walk every shard on each read."""
    harness.stream.script(
        SHARD,
        *(ReadResult([], millis_behind_latest=behind) for behind in (0, 0, 0, 500, 500, 0, None, 0)),
    )
    lease = await harness.held()
    harness.start(lease)
    await until(lambda: len(harness.behind_changes) >= 3, "three changes of MillisBehindLatest")
    await asyncio.sleep(0.05)  # nothing more comes from the rest of the script
    assert harness.behind_changes == [0, 500, 0]


class ClockedWaits(ShortWaits):
    """ShortWaits whose waits move a fake monotonic clock on by the delay asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    async def halted_within(self, halt: asyncio.Event, seconds: float | None) -> bool:
        self.now += seconds or 0.0
        return await super().halted_within(halt, seconds)


async def test_an_idle_shard_is_read_less_often_until_a_read_returns_records(harness: Harness) -> None:
    """The waits between reads grow while the reads come back empty (esm.sources.read_pacing), up
    to the idle interval, and drop back to the spacing with the first read that returns records."""
    waits = ClockedWaits()
    harness.waits = waits
    empty = ReadResult([], next_poll_delay_seconds=0.2)
    harness.stream.script(
        SHARD,
        *([empty] * 40),
        ReadResult([entry(SHARD, 1)], next_poll_delay_seconds=0.2),
        *([empty] * 3),
        # Behind (MillisBehindLatest > 0): no delay suggested, and the quiet run is over too.
        ReadResult([], millis_behind_latest=500),
        *([empty] * 3),
    )
    lease = await harness.held()
    harness.start(lease, harness.settings(idle_polling_interval=0.5), clock=lambda: waits.now)
    await until(lambda: harness.delivered_count == 1, "the record delivered")
    await until(lambda: harness.stream.readers[SHARD].reads >= 49, "the script read")
    reads = [w for w in waits.waited if w is not None]
    assert reads[:10] == [pytest.approx(0.2)] * 10  # the first 2 s of empty reads
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(reads[:40]))
    assert reads[39] == pytest.approx(0.5)  # 40 empty reads: at the idle interval
    assert reads[40:43] == [pytest.approx(0.2)] * 3  # records: back at once
    assert reads[44] == pytest.approx(0.2)  # behind
    assert reads[45:48] == [pytest.approx(0.2)] * 3
