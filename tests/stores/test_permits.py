"""The permit algorithm (esm.stores.permits), checked against both backends with real servers."""

from __future__ import annotations

import multiprocessing
import uuid
from dataclasses import dataclass

import pytest

from esm.stores import Store

from .hammer import HammerPlan, hammer

T0 = 1_000_000.0
TTL = 10.0


@pytest.fixture
def function() -> str:
    return f"fn-{uuid.uuid4().hex[:8]}"


async def take(store: Store, function: str, count: int, limit: int, now: float = T0) -> list[str | None]:
    return [await store.permits.try_acquire(function, limit, "test-holder", TTL, now) for _ in range(count)]


async def test_limit_is_respected(store: Store, function: str) -> None:
    taken = await take(store, function, count=4, limit=3)

    assert all(permit is not None for permit in taken[:3])
    assert len(set(taken[:3])) == 3
    assert taken[3] is None
    assert await store.permits.in_use(function, T0) == 3


async def test_functions_are_counted_separately(store: Store, function: str) -> None:
    await take(store, function, count=2, limit=2)

    other = await take(store, function + "-other", count=1, limit=2)

    assert other[0] is not None
    assert await store.permits.in_use(function, T0) == 2
    assert await store.permits.in_use(function + "-other", T0) == 1


@dataclass(frozen=True)
class ExpiryCase:
    name: str
    retry_at: float
    reclaimed: bool


EXPIRY_CASES = [
    ExpiryCase("just before expiry", T0 + TTL - 0.001, reclaimed=False),
    ExpiryCase("at expiry", T0 + TTL, reclaimed=True),
    ExpiryCase("long after expiry", T0 + 100 * TTL, reclaimed=True),
]


@pytest.mark.parametrize("case", EXPIRY_CASES, ids=lambda case: case.name)
async def test_expiry_reclaims_a_crashed_holders_permits(
    store: Store, function: str, case: ExpiryCase
) -> None:
    # A holder takes both permits and is killed: it never renews nor releases.
    await take(store, function, count=2, limit=2, now=T0)

    retry = await store.permits.try_acquire(function, 2, "survivor", TTL, case.retry_at)

    assert (retry is not None) == case.reclaimed
    assert await store.permits.in_use(function, case.retry_at) == (1 if case.reclaimed else 2)


async def test_in_use_counts_only_live_permits(store: Store, function: str) -> None:
    await store.permits.try_acquire(function, 5, "h", TTL, T0)
    await store.permits.try_acquire(function, 5, "h", TTL, T0 + 5)

    assert await store.permits.in_use(function, T0 + 1) == 2
    assert await store.permits.in_use(function, T0 + TTL) == 1
    assert await store.permits.in_use(function, T0 + 5 + TTL) == 0


async def test_renew_extends_the_expiry(store: Store, function: str) -> None:
    (permit,) = await take(store, function, count=1, limit=1)
    assert permit is not None

    assert await store.permits.renew(function, permit, TTL, T0 + 8) is True

    # Past the original expiry (T0 + 10) but before the renewed one (T0 + 18): still held.
    assert await store.permits.in_use(function, T0 + 15) == 1
    assert await store.permits.try_acquire(function, 1, "other", TTL, T0 + 15) is None
    assert await store.permits.try_acquire(function, 1, "other", TTL, T0 + 18) is not None


async def test_renew_fails_once_expired_or_released(store: Store, function: str) -> None:
    expired, released = await take(store, function, count=2, limit=2)
    assert expired is not None and released is not None
    await store.permits.release(function, released)

    assert await store.permits.renew(function, expired, TTL, T0 + TTL) is False
    assert await store.permits.renew(function, released, TTL, T0 + 1) is False
    assert await store.permits.renew(function, "never-issued", TTL, T0 + 1) is False
    # The failed renewal did not bring the expired permit back.
    assert await store.permits.in_use(function, T0 + TTL) == 0


async def test_release_frees_a_slot(store: Store, function: str) -> None:
    first, second = await take(store, function, count=2, limit=2)
    assert first is not None and second is not None

    await store.permits.release(function, first)

    assert await store.permits.in_use(function, T0) == 1
    assert await store.permits.try_acquire(function, 2, "h", TTL, T0) is not None
    assert await store.permits.try_acquire(function, 2, "h", TTL, T0) is None


async def test_release_is_harmless_twice_or_for_unknown_ids(store: Store, function: str) -> None:
    (permit,) = await take(store, function, count=1, limit=3)
    assert permit is not None
    await store.permits.release(function, permit)

    await store.permits.release(function, permit)
    await store.permits.release(function, "never-issued")

    assert await store.permits.in_use(function, T0) == 0


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
