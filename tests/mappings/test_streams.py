"""StreamMappingRunner: members sharing a stream's shards through the real SQLite lease store
(each runner opens the store itself, as a separate poller process would), with a fake lister
and scripted shard readers standing in for Kinesis (tests/mappings/stream_fakes.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from esm.filtering import compile_filters
from esm.mappings.failure_handling import FailureHandling
from esm.mappings.stream_shard import StreamShardSettings
from esm.mappings.streams import StreamMappingRunner, lease_namespace
from esm.metrics import Metrics
from esm.ownership.lease_coordinator import LeaseTiming
from esm.ownership.leases import LeaseStore
from esm.shard.batching import BatchLimits
from esm.shard.failures import FailurePolicy
from esm.shard.state import ShardState
from esm.sources.stream_discovery import ShardInfo
from esm.sources.stream_shards import ChildShard, ReadResult, StartPosition
from esm.stores import Store, open_store
from esm.stores.status import ShardStatusStore, data_loss_key

from .stream_fakes import (
    STREAM_ARN,
    FakeStream,
    ObservedLeases,
    RecordingInvoker,
    ShortWaits,
    entry,
    event_ids,
    sequence,
    until,
)

MAPPING = "3f1c2a9e-0000-4000-8000-000000000001"
NAMESPACE = lease_namespace(MAPPING, STREAM_ARN)
SHARDS = [f"shardId-00000000000{i}" for i in range(4)]
# Renewals every 0.3 s: a steal round, a release and an expiry all take well under a second.
TIMING = LeaseTiming(duration_seconds=0.9, discovery_interval_seconds=60.0)


class Members:
    """Runners of one mapping on the same stream and store file, each with its own connection."""

    def __init__(self, store_url: str, stream: FakeStream) -> None:
        self.store_url = store_url
        self.stream = stream
        self.invoker = RecordingInvoker()
        self.runners: dict[str, StreamMappingRunner] = {}
        self.registries: dict[str, CollectorRegistry] = {}
        self.stores: list[Store] = []
        self.observer = open_store(store_url)
        self.stores.append(self.observer)

    @property
    def leases(self) -> LeaseStore:
        """An independent view of the lease table (the test's own connection)."""
        return self.observer.leases

    def start(
        self,
        owner: str,
        leases: LeaseStore | None = None,
        timing: LeaseTiming = TIMING,
        status: ShardStatusStore | None = None,
    ) -> StreamMappingRunner:
        if leases is None:
            store = open_store(self.store_url)
            self.stores.append(store)
            leases = store.leases
        settings = StreamShardSettings(
            flavor=self.stream.flavor,
            stream_arn=STREAM_ARN,
            namespace=NAMESPACE,
            owner=owner,
            start=StartPosition.trim_horizon(),
            limits=BatchLimits(10, 0.0),
            lanes=1,
            window_seconds=0,
            polling_interval_seconds=0.01,
            idle_polling_interval_seconds=0.01,
            record_filter=compile_filters([]),
            report_batch_item_failures=False,
            policy=FailurePolicy(),
        )
        runner = StreamMappingRunner(
            mapping_id=MAPPING,
            flavor=self.stream.flavor,
            settings=settings,
            client=None,
            lister=self.stream,
            leases=leases,
            timing=timing,
            invoker=self.invoker,
            metrics=Metrics(self.registries.setdefault(owner, CollectorRegistry())),
            failure_handling=FailureHandling(),
            status=status,
            waits=ShortWaits(),
        )
        runner.start()
        self.runners[owner] = runner
        return runner

    async def owners(self) -> dict[str, str | None]:
        return {lease.shard_id: lease.owner for lease in await self.leases.list(NAMESPACE)}

    async def held_by(self, owner: str) -> set[str]:
        """The shards `owner` holds in the store that its runner is also processing."""
        stored = {shard for shard, holder in (await self.owners()).items() if holder == owner}
        return stored & set(self.runners[owner].status_reports(owner))

    async def wait_until_held(self, expected: dict[str, int], timeout: float = 5.0) -> None:
        """Until the store and the runners agree that each owner holds `expected[owner]` shards."""
        deadline = time.monotonic() + timeout
        while True:
            stored = Counter((await self.owners()).values())
            running = {owner: len(self.runners[owner].status_reports(owner)) for owner in expected}
            if all(stored[owner] == count == running[owner] for owner, count in expected.items()):
                return
            assert time.monotonic() < deadline, f"expected {expected}; store {stored}, runners {running}"
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.invoker.release_all()
        self.stream.release_pauses()
        await asyncio.gather(*(runner.shutdown(time.monotonic() + 2) for runner in self.runners.values()))
        for store in self.stores:
            await store.close()


@pytest.fixture
async def members(store_url: str) -> AsyncIterator[Members]:
    stream = FakeStream([ShardInfo(shard_id, (), closed=False) for shard_id in SHARDS])
    group = Members(store_url, stream)
    try:
        yield group
    finally:
        await group.close()


async def balanced(members: Members) -> None:
    """a takes all four shards alone; b joins and steals toward two each."""
    members.start("a")
    await members.wait_until_held({"a": 4})
    members.start("b")
    await members.wait_until_held({"a": 2, "b": 2})


async def test_a_joining_member_steals_toward_an_even_split(members: Members) -> None:
    await balanced(members)

    assert await members.held_by("a") | await members.held_by("b") == set(SHARDS)

    def counted(owner: str, metric: str) -> float:
        return members.registries[owner].get_sample_value(metric, {"mapping": MAPPING}) or 0.0

    # Each lease b stole is counted as taken by b and, once a's shard has stopped, lost by a.
    await until(lambda: counted("a", "esm_leases_lost_total") == 2, "a counts the two leases it lost")
    assert counted("b", "esm_leases_taken_total") == 2


async def test_a_member_shut_down_releases_its_leases_to_the_other(members: Members) -> None:
    await balanced(members)
    released = await members.held_by("a")

    await members.runners["a"].shutdown(time.monotonic() + 2)

    owners = await members.owners()
    for shard_id in released:
        # No owner: free at once, where waiting for the expiry would take up to a lease duration.
        assert owners[shard_id] in (None, "b")
    await members.wait_until_held({"b": 4}, timeout=TIMING.duration_seconds)


async def test_a_member_that_stops_renewing_loses_its_leases_at_expiry(members: Members) -> None:
    await balanced(members)
    killed = members.runners["a"]
    # kill -9: the loops and shards stop at once; nothing is released or checkpointed.
    tasks = [*killed.coordinator.tasks, *killed.shards.tasks]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    expiries = {
        lease.shard_id: lease.expires_at
        for lease in await members.leases.list(NAMESPACE)
        if lease.owner == "a"
    }
    assert len(expiries) == 2

    while time.time() < min(expiries.values()) - 0.05:
        # Before the expiry the leases are still a's: nobody steals from a live-looking member
        # that holds no more than its share.
        owners = await members.owners()
        assert all(owners[shard_id] == "a" for shard_id in expiries), owners
        await asyncio.sleep(0.02)
    await members.wait_until_held({"b": 4}, timeout=2 * TIMING.duration_seconds)


async def test_children_get_leases_and_start_after_their_parent_ended(
    members: Members,
) -> None:
    parent, children = "shardId-000000000000", ["shardId-000000000001", "shardId-000000000002"]
    stream = members.stream
    stream.shards = [ShardInfo(parent, (), closed=False)]  # the listing never names the children
    stream.script(parent, ReadResult([entry(parent, 1)]))
    stream.script(
        parent,
        ReadResult(
            [entry(parent, 2, key="last")],
            shard_ended=True,
            child_shards=tuple(ChildShard(child, (parent,)) for child in children),
        ),
    )
    for child in children:
        stream.script(child, ReadResult([entry(child, 3)]))
    last_parent_record = members.invoker.hold("last")
    runner = members.start("a", ObservedLeases(members.leases, stream.log))

    # The parent's last record is in flight: the children are leased and held, but wait.
    await members.wait_until_held({"a": 3})
    reports = runner.status_reports("a")
    assert [reports[child]["state"] for child in children] == [ShardState.WAITING_ON_PARENTS.value] * 2
    assert stream.opened_shards() == [parent]

    last_parent_record.set()
    everything = sorted([*event_ids(parent, [1, 2]), *(f"{child}:{sequence(3)}" for child in children)])
    await until(lambda: sorted(members.invoker.delivered()) == everything, "every record is delivered")
    assert stream.log[:2] == [f"read {parent}", f"end {parent}"]
    assert sorted(stream.log[2:]) == [f"read {child}" for child in children]
    assert all(opened.start == StartPosition.trim_horizon() for opened in stream.opened)


async def test_a_finished_shard_gone_from_the_stream_loses_its_lease_once_its_children_checkpointed(
    members: Members,
) -> None:
    parent, child = "shardId-000000000000", "shardId-000000000001"
    stream = members.stream
    stream.shards = [ShardInfo(parent, (), closed=True), ShardInfo(child, (parent,), closed=False)]
    stream.script(parent, ReadResult([entry(parent, 1)], shard_ended=True))
    child_record = members.invoker.hold("child")
    stream.script(child, ReadResult([entry(child, 2, key="child")]))
    members.start("a", timing=LeaseTiming(duration_seconds=0.9, discovery_interval_seconds=0.05))
    await until(lambda: len(members.invoker.batches) == 2, "the child's record is in flight")
    stream.shards = [ShardInfo(child, (parent,), closed=False)]  # retention removed the parent

    await asyncio.sleep(0.3)  # several listings: the child has no checkpoint yet
    assert set(await members.owners()) == {parent, child}

    child_record.set()

    async def only_the_child_is_left() -> bool:
        return set(await members.owners()) == {child}

    await until(only_the_child_is_left, "the parent's lease is deleted")


async def test_a_trimmed_checkpoint_is_recorded_for_esm_status(members: Members) -> None:
    shard = SHARDS[0]
    members.stream.shards = [ShardInfo(shard, (), closed=False)]
    members.stream.script(shard, ReadResult([entry(shard, 1)], data_lost=True))
    store = open_store(members.store_url)
    members.stores.append(store)
    runner = members.start("a", store.leases, status=store.status)

    async def recorded() -> bool:
        return shard in await store.status.read(data_loss_key(MAPPING), time.time())

    await until(recorded, "the loss is recorded in the store")
    assert runner.status_reports("a")[shard]["data_lost_at"] is not None
