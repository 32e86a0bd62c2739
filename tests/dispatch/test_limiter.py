"""The concurrency limiters: local semaphore and store permits (real SQLite and Redis)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from esm.dispatch.limiter import (
    PERMIT_TTL_MARGIN_SECONDS,
    ConcurrencyLimiter,
    LocalLimiter,
    StoreLimiter,
    UnlimitedLimiter,
    make_limiter,
)
from esm.stores import PermitStore, Store, StoreUnavailableError, open_store

T0 = 1_000_000.0


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    url: str = request.getfixturevalue("sqlite_store_url" if request.param == "sqlite" else "redis_url")
    opened = open_store(url)
    yield opened
    await opened.close()


@pytest.fixture
def function() -> str:
    return f"fn-{uuid.uuid4().hex[:8]}"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Limiters:
    """Builds limiters of one kind and closes them after the test."""

    build: Callable[[int], ConcurrencyLimiter]
    made: list[ConcurrencyLimiter]

    def __call__(self, limit: int) -> ConcurrencyLimiter:
        limiter = self.build(limit)
        self.made.append(limiter)
        return limiter


@pytest.fixture(params=["local", "sqlite", "redis"])
async def limiters(request: pytest.FixtureRequest, function: str) -> AsyncIterator[Limiters]:
    store: Store | None = None
    if request.param == "local":
        built = Limiters(LocalLimiter, [])
    else:
        url_fixture = "sqlite_store_url" if request.param == "sqlite" else "redis_url"
        store = open_store(request.getfixturevalue(url_fixture))
        permits = store.permits
        built = Limiters(lambda limit: StoreLimiter(permits, function, limit, "test", 30.0), [])
    yield built
    for limiter in built.made:
        await limiter.close()
    if store is not None:
        # Every permit came back (local limiters have no store to ask).
        assert await store.permits.in_use(function, time.time()) == 0
        await store.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let other tasks run until `condition` holds (bounded, so a bug fails instead of hanging)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting until {what}")


async def test_unlimited_never_waits_and_release_is_idempotent() -> None:
    limiter = UnlimitedLimiter()

    permits = [await limiter.acquire() for _ in range(1000)]

    assert not any(permit.waited for permit in permits)
    await permits[0].release()
    await permits[0].release()


async def test_never_more_than_limit_holders_at_once(limiters: Limiters) -> None:
    limit = 3
    limiter = limiters(limit)
    current = highest = waits = 0

    async def invoke_repeatedly() -> None:
        nonlocal current, highest, waits
        for _ in range(5):
            permit = await limiter.acquire()
            waits += permit.waited
            current += 1
            highest = max(highest, current)
            await asyncio.sleep(0.001)
            current -= 1
            await permit.release()

    await asyncio.wait_for(asyncio.gather(*(invoke_repeatedly() for _ in range(12))), timeout=20)

    assert highest == limit
    assert waits > 0


async def test_waited_is_reported_only_when_acquire_had_to_wait(limiters: Limiters) -> None:
    limiter = limiters(1)
    first = await limiter.acquire()
    second_task = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    assert not second_task.done()

    await first.release()
    second = await asyncio.wait_for(second_task, timeout=5)

    assert first.waited is False
    assert second.waited is True
    await second.release()
    third = await limiter.acquire()
    assert third.waited is False
    await third.release()


async def test_a_waiter_is_not_woken_by_a_double_release(limiters: Limiters) -> None:
    limiter = limiters(1)
    first = await limiter.acquire()
    await first.release()
    await first.release()
    second = await limiter.acquire()

    third_task = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)

    assert not third_task.done(), "releasing one permit twice must not make room for two"
    await second.release()
    await (await asyncio.wait_for(third_task, timeout=5)).release()


async def test_cancelling_a_waiter_leaks_no_permit(limiters: Limiters) -> None:
    limiter = limiters(1)
    held = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await held.release()

    again = await asyncio.wait_for(limiter.acquire(), timeout=5)
    assert again.waited is False
    await again.release()


async def test_a_release_in_this_process_wakes_a_store_waiter_at_once(store: Store, function: str) -> None:
    # Backoff so long that only the wake-up can let the waiter through within the test.
    limiter = StoreLimiter(
        store.permits, function, 1, "test", 30.0, first_backoff_seconds=60.0, max_backoff_seconds=60.0
    )
    held = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)

    await held.release()

    permit = await asyncio.wait_for(waiter, timeout=5)
    assert permit.waited is True
    await permit.release()
    await limiter.close()


class DelegatingPermits:
    """Passes every call to a real permit store; subclasses inject faults into one call."""

    def __init__(self, inner: PermitStore) -> None:
        self.inner = inner

    async def try_acquire(self, function: str, limit: int, holder: str, ttl: float, now: float) -> str | None:
        return await self.inner.try_acquire(function, limit, holder, ttl, now)

    async def renew(self, function: str, permit_id: str, ttl_seconds: float, now: float) -> bool:
        return await self.inner.renew(function, permit_id, ttl_seconds, now)

    async def release(self, function: str, permit_id: str) -> None:
        await self.inner.release(function, permit_id)

    async def in_use(self, function: str, now: float) -> int:
        return await self.inner.in_use(function, now)


class GatedPermits(DelegatingPermits):
    """A permit store whose try_acquire stalls until the test opens the gate."""

    def __init__(self, inner: PermitStore) -> None:
        super().__init__(inner)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def try_acquire(self, function: str, limit: int, holder: str, ttl: float, now: float) -> str | None:
        self.entered.set()
        await self.gate.wait()
        return await self.inner.try_acquire(function, limit, holder, ttl, now)


async def test_cancelling_during_the_store_call_gives_the_taken_permit_back(
    store: Store, function: str
) -> None:
    gated = GatedPermits(store.permits)
    limiter = StoreLimiter(gated, function, 1, "test", 30.0)
    acquiring = asyncio.create_task(limiter.acquire())
    await asyncio.wait_for(gated.entered.wait(), timeout=5)

    acquiring.cancel()
    gated.gate.set()  # the store call completes after its caller is gone, and takes a permit
    with pytest.raises(asyncio.CancelledError):
        await acquiring
    await limiter.close()

    assert await store.permits.in_use(function, time.time()) == 0
    assert limiter.held == 0


async def test_renewal_keeps_a_long_invocation_s_permit(store: Store, function: str) -> None:
    clock = FakeClock(T0)
    limiter = StoreLimiter(store.permits, function, 1, "test", 10.0, clock)
    permit = await limiter.acquire()

    clock.now = T0 + 8
    await limiter.renew_held()

    # Past the first expiry (T0 + 10), within the renewed one (T0 + 18).
    assert await store.permits.in_use(function, T0 + 15) == 1
    assert limiter.held == 1
    await permit.release()
    assert await store.permits.in_use(function, T0 + 15) == 0
    await limiter.close()


async def test_a_permit_that_expired_before_renewal_is_dropped_and_reported(
    store: Store, function: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    limiter = StoreLimiter(store.permits, function, 1, "test", 10.0, clock)
    permit = await limiter.acquire()

    clock.now = T0 + 10
    with caplog.at_level(logging.WARNING, logger="esm.dispatch.limiter"):
        await limiter.renew_held()

    assert limiter.held == 0
    assert "expired before renewal" in caplog.text
    await permit.release()
    await limiter.close()


async def test_the_background_renewer_runs_while_permits_are_held(store: Store, function: str) -> None:
    # ttl 90 ms: renewed every 30 ms; without renewal the permit would expire during the hold.
    limiter = StoreLimiter(store.permits, function, 1, "test", 0.09)
    permit = await limiter.acquire()

    await asyncio.sleep(0.2)

    assert await store.permits.in_use(function, time.time()) == 1
    await permit.release()
    await limiter.close()
    assert await store.permits.in_use(function, time.time()) == 0


class FlakyPermits(DelegatingPermits):
    """A permit store that is unreachable for the first `failures` acquisitions."""

    def __init__(self, inner: PermitStore, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    async def try_acquire(self, function: str, limit: int, holder: str, ttl: float, now: float) -> str | None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError(
                "Store: Redis at 'redis://test' failed to acquire: connection refused"
            )
        return await self.inner.try_acquire(function, limit, holder, ttl, now)


async def test_a_failing_store_is_waited_out_and_logged_once(
    store: Store, function: str, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyPermits(store.permits, failures=3)
    limiter = StoreLimiter(flaky, function, 1, "test", 30.0, store_error_backoff_seconds=0.001)

    with caplog.at_level(logging.INFO, logger="esm.dispatch.limiter"):
        permit = await asyncio.wait_for(limiter.acquire(), timeout=5)

    assert permit.waited is True
    assert caplog.text.count("permit store failing") == 1
    assert "permit store recovered" in caplog.text
    await permit.release()
    await limiter.close()


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match=f"concurrency limit must be >= 1, got {limit}"):
        LocalLimiter(limit)


@dataclass(frozen=True)
class Choice:
    limit: int | None
    store: str | None  # "local", "shared" or no store
    shared: bool
    expected: type


CHOICES = [
    Choice(None, "shared", True, UnlimitedLimiter),
    Choice(None, None, False, UnlimitedLimiter),
    Choice(4, None, False, LocalLimiter),
    Choice(4, "local", False, LocalLimiter),
    Choice(4, "local", True, StoreLimiter),
    Choice(4, "shared", False, StoreLimiter),
    Choice(4, "shared", True, StoreLimiter),
]


async def _noop_close() -> None:
    return None


@pytest.mark.parametrize("choice", CHOICES, ids=str)
async def test_make_limiter_chooses_by_limit_store_and_sharing(choice: Choice, sqlite_store_url: str) -> None:
    sqlite = open_store(sqlite_store_url)
    stores = {
        "local": sqlite,
        # Only `is_local` matters for the choice; the permits object is never called here.
        "shared": Store(
            url="redis://elsewhere",
            is_local=False,
            permits=sqlite.permits,
            status=sqlite.status,
            leases=sqlite.leases,
            mappings=sqlite.mappings,
            _close=_noop_close,
        ),
    }
    store = stores[choice.store] if choice.store else None

    limiter = make_limiter(choice.limit, store, "fn", "host:1", timeout_seconds=60.0, shared=choice.shared)

    assert type(limiter) is choice.expected
    if isinstance(limiter, StoreLimiter):
        assert limiter.ttl_seconds == 60.0 + PERMIT_TTL_MARGIN_SECONDS
    await sqlite.close()


def test_a_shared_limit_without_a_store_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a store"):
        make_limiter(4, None, "fn", "host:1", timeout_seconds=60.0, shared=True)
