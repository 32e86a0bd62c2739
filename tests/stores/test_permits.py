"""Permits as leases (esm.stores.permits), checked against both backends with real servers.

Expiry runs on the store's clock, so the cases that need a permit to expire use short leases
and real waits, with margins of several tenths of a second either side.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid

import pytest

from esm.stores import Store

from .hammer import HammerPlan, hammer

LEASE = 30.0


@pytest.fixture
def function() -> str:
    return f"fn-{uuid.uuid4().hex[:8]}"


def token() -> str:
    return f"test-holder/{uuid.uuid4().hex}"


async def take(store: Store, function: str, count: int, limit: int, lease: float = LEASE) -> list[str | None]:
    taken: list[str | None] = []
    for _ in range(count):
        candidate = token()
        taken.append(
            candidate if await store.permits.try_acquire(function, limit, candidate, lease) else None
        )
    return taken


async def test_limit_is_respected(store: Store, function: str) -> None:
    taken = await take(store, function, count=4, limit=3)

    assert all(permit is not None for permit in taken[:3])
    assert taken[3] is None
    assert await store.permits.in_use(function) == 3


async def test_functions_are_counted_separately(store: Store, function: str) -> None:
    await take(store, function, count=2, limit=2)

    other = await take(store, function + "-other", count=1, limit=2)

    assert other[0] is not None
    assert await store.permits.in_use(function) == 2
    assert await store.permits.in_use(function + "-other") == 1


async def test_a_retried_acquire_takes_one_permit_only(store: Store, function: str) -> None:
    retried = token()

    assert await store.permits.try_acquire(function, 1, retried, LEASE) is True
    assert await store.permits.try_acquire(function, 1, retried, LEASE) is True

    assert await store.permits.in_use(function) == 1
    assert await take(store, function, count=1, limit=1) == [None]


async def test_an_acquire_arriving_after_its_release_takes_nothing(store: Store, function: str) -> None:
    # The client gave up waiting and voided its token; the acquire then reaches the store.
    abandoned = token()
    await store.permits.release(function, abandoned)

    assert await store.permits.try_acquire(function, 1, abandoned, LEASE) is False
    assert await store.permits.in_use(function) == 0
    assert (await take(store, function, count=1, limit=1))[0] is not None


async def test_a_released_token_cannot_come_back(store: Store, function: str) -> None:
    (held,) = await take(store, function, count=1, limit=2)
    assert held is not None
    await store.permits.release(function, held)

    assert await store.permits.try_acquire(function, 2, held, LEASE) is False
    assert await store.permits.renew(function, held, LEASE) is False
    assert await store.permits.in_use(function) == 0


async def test_an_unrenewed_permit_frees_itself_after_its_lease(store: Store, function: str) -> None:
    # A holder takes both permits and is killed: it never renews nor releases.
    dead = await take(store, function, count=2, limit=2, lease=0.3)
    assert await take(store, function, count=1, limit=2) == [None]

    await asyncio.sleep(0.6)

    assert await store.permits.in_use(function) == 0
    assert (await take(store, function, count=1, limit=2))[0] is not None
    # Lost for good: the dead holder cannot renew it back.
    assert dead[0] is not None
    assert await store.permits.renew(function, dead[0], LEASE) is False


async def test_renewal_keeps_a_permit_past_its_first_lease(store: Store, function: str) -> None:
    (held,) = await take(store, function, count=1, limit=1, lease=1.0)
    assert held is not None
    await asyncio.sleep(0.5)

    assert await store.permits.renew(function, held, 1.0) is True
    await asyncio.sleep(0.7)  # past the first lease (1.0 s), within the renewed one (1.5 s)

    assert await store.permits.in_use(function) == 1
    assert await take(store, function, count=1, limit=1) == [None]


async def test_release_frees_a_slot(store: Store, function: str) -> None:
    first, second = await take(store, function, count=2, limit=2)
    assert first is not None and second is not None

    await store.permits.release(function, first)

    assert await store.permits.in_use(function) == 1
    assert [permit is not None for permit in await take(store, function, count=2, limit=2)] == [True, False]


async def test_release_is_harmless_twice_or_for_unknown_tokens(store: Store, function: str) -> None:
    (permit,) = await take(store, function, count=1, limit=3)
    assert permit is not None
    await store.permits.release(function, permit)

    await store.permits.release(function, permit)
    await store.permits.release(function, "never-issued")

    assert await store.permits.in_use(function) == 0


async def test_several_processes_never_exceed_the_limit(store: Store, store_url: str, function: str) -> None:
    processes, limit = 3, 3
    plan = HammerPlan(store_url, function, limit=limit, tasks=4, rounds=15, hold_seconds=0.002)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    current, highest, done = context.Value("i", 0), context.Value("i", 0), context.Value("i", 0)
    children = [
        context.Process(target=hammer, args=(plan, start, current, highest, done), name=f"hammer-{n}")
        for n in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)

    assert [child.exitcode for child in children] == [0] * processes
    assert done.value == processes * plan.tasks * plan.rounds
    # Twelve tasks competed for three permits: the limit was reached and never passed.
    assert highest.value == limit
    assert current.value == 0
