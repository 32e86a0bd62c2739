"""esm_shards_unowned follows the lease table as the lease loop reads it (a real SQLite store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from esm.metrics import Metrics
from esm.ownership.leases import SHARD_END, lease_namespace
from esm.status.unowned_gauge import UnownedShardsGauge
from esm.stores import Store, open_store

NAMESPACE = lease_namespace("m-1", "arn:aws:kinesis:us-east-1:000000000000:stream/orders")
NOW = 1_000.0


@pytest.fixture
async def store(sqlite_store_url: str) -> AsyncIterator[Store]:
    opened = open_store(sqlite_store_url)
    yield opened
    await opened.close()


async def test_each_listing_sets_the_unowned_count(store: Store) -> None:
    registry = CollectorRegistry()
    clock = [NOW]
    leases = UnownedShardsGauge(
        store.leases, Metrics(registry).shards_unowned.labels("m-1"), lambda: clock[0]
    )

    def unowned() -> float | None:
        return registry.get_sample_value("esm_shards_unowned", {"mapping": "m-1"})

    for shard in ("shardId-0", "shardId-1", "shardId-2"):
        await leases.ensure(NAMESPACE, shard, ())
    assert len(await leases.list(NAMESPACE)) == 3 and unowned() == 3
    held = await leases.take(NAMESPACE, "shardId-0", "a:1", 0, 10.0, NOW)
    ended = await leases.take(NAMESPACE, "shardId-1", "a:1", 0, 10.0, NOW)
    assert held is not None and ended is not None
    assert await leases.checkpoint(NAMESPACE, "shardId-1", "a:1", ended.token, SHARD_END, NOW)
    await leases.list(NAMESPACE)
    assert unowned() == 1  # shardId-2; shardId-1 is finished
    clock[0] = NOW + 11  # shardId-0's owner stopped renewing
    await leases.list(NAMESPACE)
    assert unowned() == 2


async def test_a_stream_nobody_reads_past_the_lease_duration_is_said_once_then_its_end(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [NOW]
    leases = UnownedShardsGauge(
        store.leases,
        Metrics(CollectorRegistry()).shards_unowned.labels("m-1"),
        lambda: clock[0],
        label="mapping m-1 (function fn)",
        wait_seconds=10.0,
    )
    for shard in ("shardId-0", "shardId-1"):
        await leases.ensure(NAMESPACE, shard, ())
    for step in range(0, 25, 3):  # every lease round for 24 s, nobody takes a lease
        clock[0] = NOW + step
        await leases.list(NAMESPACE)
    held = await leases.take(NAMESPACE, "shardId-0", "a:1", 0, 10.0, clock[0])
    assert held is not None
    await leases.list(NAMESPACE)
    await leases.list(NAMESPACE)
    said = [record.getMessage() for record in caplog.records if record.name == "esm.status.unowned_gauge"]
    assert said == [
        "mapping m-1 (function fn): none of its 2 shards owned by a live member after 12s "
        "(LeaseDurationSeconds 10); waiting for a lease to be taken",
        "mapping m-1 (function fn): its shards are owned again after 24s",
    ]
