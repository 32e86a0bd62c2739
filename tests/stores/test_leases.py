"""Shard leases against both real backends: take, renew, expiry, steal and fenced checkpoints.

Each backend's store is built directly (it is not wired into `Store` yet); `connect()` opens one
more independent connection to the same store, as another process would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio

from esm.ownership.leases import SHARD_END, Lease, LeaseStore
from esm.stores.redis.leases import RedisLeaseStore
from esm.stores.sqlite.database import SqliteDatabase
from esm.stores.sqlite.leases import LEASES_SCHEMA, SqliteLeaseStore
from esm.stores.url import RedisLocation, parse_store_url

Connect = Callable[[], Awaitable[LeaseStore]]
TTL = 10.0


@pytest.fixture(params=["sqlite", "redis"])
async def connect(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Connect]:
    closers: list[Callable[[], Awaitable[None]]] = []
    if request.param == "sqlite":
        path = str(tmp_path / "leases.sqlite")

        async def connect_sqlite() -> LeaseStore:
            database = SqliteDatabase.open(path, LEASES_SCHEMA)
            closers.append(database.close)
            return SqliteLeaseStore(database)

        yield connect_sqlite
    else:
        location = parse_store_url(request.getfixturevalue("redis_url"))
        assert isinstance(location, RedisLocation)

        async def connect_redis() -> LeaseStore:
            client = redis.asyncio.Redis.from_url(location.client_url)
            closers.append(client.aclose)
            return RedisLeaseStore(client, location.prefix, location.display_url)

        yield connect_redis
    for close in closers:
        await close()


@pytest.fixture
async def leases(connect: Connect) -> LeaseStore:
    return await connect()


async def taken(leases: LeaseStore, shard: str, owner: str, now: float) -> Lease:
    """Take `shard` (created if needed) for `owner` at `now`; the test fails if that is refused."""
    current = await leases.ensure("s", shard, ())
    lease = await leases.take("s", shard, owner, current.token, TTL, now)
    assert lease is not None, f"{owner} could not take {shard}"
    return lease


async def test_ensure_creates_an_unowned_lease_once(leases: LeaseStore) -> None:
    created = await leases.ensure("s", "shard-2", ["shard-0", "shard-1"])
    assert created == Lease("s", "shard-2", None, 0.0, 0, None, ("shard-0", "shard-1"))
    await taken(leases, "shard-2", "a", 100.0)
    again = await leases.ensure("s", "shard-2", [])
    assert (again.owner, again.token, again.parent_shard_ids) == ("a", 1, ("shard-0", "shard-1"))


async def test_list_returns_the_leases_of_one_stream_by_shard_id(leases: LeaseStore) -> None:
    for shard in ["shard-1", "shard-0"]:
        await leases.ensure("s", shard, ())
    await leases.ensure("other", "shard-9", ())
    await taken(leases, "shard-1", "a", 100.0)
    listed = await leases.list("s")
    assert [(lease.shard_id, lease.owner, lease.token) for lease in listed] == [
        ("shard-0", None, 0),
        ("shard-1", "a", 1),
    ]
    assert await leases.list("nothing") == []


async def test_take_sets_owner_and_expiry_and_bumps_the_token(leases: LeaseStore) -> None:
    lease = await taken(leases, "0", "a", 100.0)
    assert (lease.owner, lease.expires_at, lease.token) == ("a", 110.0, 1)
    assert await leases.list("s") == [lease]


async def test_take_with_a_stale_token_is_refused(leases: LeaseStore) -> None:
    await taken(leases, "0", "a", 100.0)
    assert await leases.take("s", "0", "b", 0, TTL, 200.0) is None
    assert await leases.take("s", "missing", "b", 0, TTL, 200.0) is None
    (lease,) = await leases.list("s")
    assert (lease.owner, lease.token) == ("a", 1)


async def test_renew_extends_only_for_the_holder_with_its_token(leases: LeaseStore) -> None:
    lease = await taken(leases, "0", "a", 100.0)
    assert await leases.renew("s", "0", "a", lease.token, TTL, 105.0) is True
    assert await leases.renew("s", "0", "b", lease.token, TTL, 106.0) is False
    assert await leases.renew("s", "0", "a", lease.token + 1, TTL, 106.0) is False
    (stored,) = await leases.list("s")
    assert stored.expires_at == 115.0


async def test_an_expired_lease_is_taken_over_and_its_old_holder_is_fenced(leases: LeaseStore) -> None:
    old = await taken(leases, "0", "a", 100.0)
    (seen,) = await leases.list("s")
    assert not seen.is_available(109.9) and seen.is_available(110.0)
    new = await leases.take("s", "0", "b", seen.token, TTL, 110.0)
    assert new is not None and (new.owner, new.token) == ("b", 2)
    assert await leases.renew("s", "0", "a", old.token, TTL, 111.0) is False
    assert await leases.checkpoint("s", "0", "a", old.token, "5", 111.0) is False
    assert await leases.checkpoint("s", "0", "b", new.token, "5", 111.0) is True


async def test_steal_of_a_live_lease_fences_the_victim(leases: LeaseStore) -> None:
    victim = await taken(leases, "0", "a", 100.0)
    stolen = await leases.take("s", "0", "b", victim.token, TTL, 101.0)  # a's lease is still live
    assert stolen is not None and stolen.owner == "b"
    assert await leases.checkpoint("s", "0", "a", victim.token, "1", 102.0) is False
    assert await leases.release("s", "0", "a", victim.token) is False


async def test_release_frees_the_lease_and_bumps_the_token(leases: LeaseStore) -> None:
    lease = await taken(leases, "0", "a", 100.0)
    assert await leases.release("s", "0", "a", lease.token) is True
    (released,) = await leases.list("s")
    assert (released.owner, released.token) == (None, 2)
    assert released.is_available(100.0)
    assert await leases.checkpoint("s", "0", "a", lease.token, "1", 101.0) is False


async def test_only_a_finished_lease_is_deleted(leases: LeaseStore) -> None:
    lease = await taken(leases, "0", "a", 100.0)
    await leases.ensure("s", "1", ["0"])
    assert await leases.checkpoint("s", "0", "a", lease.token, "7", 101.0)
    assert await leases.delete_finished("s", "0") is False  # still being read
    assert await leases.delete_finished("s", "9") is False  # no such lease
    assert await leases.checkpoint("s", "0", "a", lease.token, SHARD_END, 101.0)

    assert await leases.delete_finished("s", "0") is True

    assert [remaining.shard_id for remaining in await leases.list("s")] == ["1"]


async def test_checkpoint_needs_an_unexpired_lease(leases: LeaseStore) -> None:
    lease = await taken(leases, "0", "a", 100.0)
    assert await leases.checkpoint("s", "0", "a", lease.token, "7", 110.0) is False
    (stored,) = await leases.list("s")
    assert stored.checkpoint is None


async def test_checkpoints_only_move_forward_as_integers(leases: LeaseStore) -> None:
    lease = await taken(leases, "0", "a", 100.0)
    big = "49590338271490256608559692538361571095921575989136588898"  # a Kinesis-sized number

    async def checkpoint(sequence: str) -> bool:
        return await leases.checkpoint("s", "0", "a", lease.token, sequence, 101.0)

    assert await checkpoint("9") is True
    assert await checkpoint("10") is True  # 10 > 9 as integers, though "10" < "9" as text
    assert await checkpoint("9") is False
    assert await checkpoint("10") is True  # the same position again is harmless
    assert await checkpoint(big) is True
    assert await checkpoint(str(int(big) - 1)) is False
    assert await checkpoint(SHARD_END) is True
    assert await checkpoint(str(int(big) + 1)) is False  # nothing comes after SHARD_END
    (stored,) = await leases.list("s")
    assert stored.checkpoint == SHARD_END


async def test_a_checkpoint_that_is_not_a_sequence_number_is_an_error(leases: LeaseStore) -> None:
    lease = await taken(leases, "shard-3", "a", 100.0)
    with pytest.raises(ValueError, match=r"Lease s/shard-3: checkpoint '12a' is neither"):
        await leases.checkpoint("s", "shard-3", "a", lease.token, "12a", 101.0)


async def test_of_two_concurrent_takers_exactly_one_wins(connect: Connect) -> None:
    first, second = await connect(), await connect()
    for shard in range(5):
        seen = await first.ensure("s", str(shard), ())
        results = await asyncio.gather(
            first.take("s", str(shard), "a", seen.token, TTL, 100.0),
            second.take("s", str(shard), "b", seen.token, TTL, 100.0),
        )
        winners = [result for result in results if result is not None]
        assert len(winners) == 1, results
        (stored,) = [lease for lease in await second.list("s") if lease.shard_id == str(shard)]
        assert stored == winners[0] and stored.token == 1
