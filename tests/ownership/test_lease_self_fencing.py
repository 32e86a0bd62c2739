"""A member cut off from the lease store stops its shards once their leases may have expired,
and takes them back when the store answers again (real SQLite lease store, real time)."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from esm.ownership.lease_coordinator import LeaseCoordinator, LeaseTiming
from esm.ownership.leases import Lease, LeaseStore
from esm.stores import Store, StoreUnavailableError, open_store

DURATION = 0.9


@dataclass(frozen=True)
class Listed:
    shard_id: str
    parent_shard_ids: Sequence[str] = ()


class CutOffLeases:
    """The real lease store, unreachable while `cut` is set (a network cut)."""

    def __init__(self, inner: LeaseStore) -> None:
        self.inner = inner
        self.cut = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self.inner, name)

        async def maybe_cut(*args: Any) -> Any:
            if self.cut:
                raise StoreUnavailableError("Store: Redis at 'redis://test' failed: timeout")
            return await call(*args)

        return maybe_cut


@dataclass
class Holder:
    shards: dict[str, int] = field(default_factory=dict)
    taken: list[tuple[str, float]] = field(default_factory=list)
    stopped: list[tuple[str, float]] = field(default_factory=list)

    def held(self) -> Mapping[str, int]:
        return dict(self.shards)

    def lease_taken(self, lease: Lease, stolen_from: str | None) -> None:
        self.shards[lease.shard_id] = lease.token
        self.taken.append((lease.shard_id, time.monotonic()))

    def lease_refused(self, shard_id: str) -> None:
        self.shards.pop(shard_id, None)
        self.stopped.append((shard_id, time.monotonic()))


@pytest.fixture
async def store(sqlite_store_url: str) -> AsyncIterator[Store]:
    opened = open_store(sqlite_store_url)
    yield opened
    await opened.close()


async def until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_member_cut_off_from_the_store_stops_its_shards_then_takes_them_back(store: Store) -> None:
    leases = CutOffLeases(store.leases)
    holder = Holder()

    async def list_shards() -> builtins.list[Listed]:
        return [Listed("shard-0"), Listed("shard-1")]

    coordinator = LeaseCoordinator(
        name="m",
        leases=leases,  # type: ignore[arg-type]
        namespace="stream",
        owner="host-a:1",
        timing=LeaseTiming(duration_seconds=DURATION, discovery_interval_seconds=60),
        list_shards=list_shards,
        holder=holder,
    )
    coordinator.start()
    try:
        await until(lambda: set(holder.shards) == {"shard-0", "shard-1"}, 5)
        await asyncio.sleep(DURATION)  # renewed meanwhile: nothing stops
        assert holder.stopped == []

        leases.cut = True
        cut_at = time.monotonic()
        await until(lambda: not holder.shards, 5)
        stopped_after = max(at for _, at in holder.stopped) - cut_at
        # Not before a renewal was due and missed, not later than one lease plus a round.
        assert DURATION / 3 < stopped_after <= DURATION * (1 + 2 / 3) + 0.3

        leases.cut = False
        await until(lambda: set(holder.shards) == {"shard-0", "shard-1"}, 5)
    finally:
        await coordinator.stop()
