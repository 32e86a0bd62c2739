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
    DEFAULT_PERMIT_LEASE_SECONDS,
    ConcurrencyLimiter,
    LocalLimiter,
    StoreLimiter,
    UnlimitedLimiter,
    make_limiter,
)
from esm.stores import PermitStore, Store, StoreUnavailableError, open_store


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    url: str = request.getfixturevalue("sqlite_store_url" if request.param == "sqlite" else "redis_url")
    opened = open_store(url)
    yield opened
    await opened.close()


@pytest.fixture
def function() -> str:
    return f"fn-{uuid.uuid4().hex[:8]}"


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
        assert await store.permits.in_use(function) == 0
        await store.close()


async def until_async(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Wait in real time until `condition` holds (for work paced by the clock, like renewals)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


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

    async def try_acquire(self, function: str, limit: int, token: str, lease_seconds: float) -> bool:
        return await self.inner.try_acquire(function, limit, token, lease_seconds)

    async def renew(self, function: str, token: str, lease_seconds: float) -> bool:
        return await self.inner.renew(function, token, lease_seconds)

    async def release(self, function: str, token: str) -> None:
        await self.inner.release(function, token)

    async def in_use(self, function: str) -> int:
        return await self.inner.in_use(function)


class LateAcquires(DelegatingPermits):
    """A store whose acquires reach it late: each is sent at once but arrives when the gate opens,
    even if the caller stopped waiting (a command queued on an abandoned connection)."""

    def __init__(self, inner: PermitStore) -> None:
        super().__init__(inner)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.arrived: list[asyncio.Task[bool]] = []

    async def try_acquire(self, function: str, limit: int, token: str, lease_seconds: float) -> bool:
        async def arrive() -> bool:
            await self.gate.wait()
            return await self.inner.try_acquire(function, limit, token, lease_seconds)

        self.arrived.append(asyncio.create_task(arrive()))
        self.entered.set()
        return await asyncio.shield(self.arrived[-1])


@pytest.mark.parametrize("abandon", ["cancelled", "timed out"])
async def test_an_acquire_abandoned_and_arriving_late_leaves_no_permit(
    store: Store, function: str, abandon: str
) -> None:
    late = LateAcquires(store.permits)
    # A 0.3 s lease bounds every store call at 0.1 s: the gated acquire times out.
    limiter = StoreLimiter(late, function, 1, "test", 0.3, store_error_backoff_seconds=60.0)
    acquiring = asyncio.create_task(limiter.acquire())
    await asyncio.wait_for(late.entered.wait(), timeout=5)

    if abandon == "cancelled":
        acquiring.cancel()
    else:
        await asyncio.sleep(0.3)
        assert not acquiring.done(), "a timed-out acquire waits for the store to recover"
        acquiring.cancel()
    with pytest.raises(asyncio.CancelledError):
        await acquiring
    await limiter.close()  # lets the void (release of the token) reach the store first
    late.gate.set()  # then the acquire arrives

    # Every acquire sent (the timed-out one may have been followed by none or a retry) is refused.
    assert await asyncio.wait_for(asyncio.gather(*late.arrived), timeout=5) == [False] * len(late.arrived)
    assert await store.permits.in_use(function) == 0
    assert limiter.held == 0


async def test_a_long_invocation_keeps_its_permit_by_renewals(store: Store, function: str) -> None:
    renewals = 0

    class CountingRenewals(DelegatingPermits):
        async def renew(self, function: str, token: str, lease_seconds: float) -> bool:
            nonlocal renewals
            renewed = await super().renew(function, token, lease_seconds)
            renewals += renewed
            return renewed

    # A 1.5 s lease renewed every 0.5 s: the event loop would have to stall for 1 s to lose it.
    limiter = StoreLimiter(CountingRenewals(store.permits), function, 1, "test", 1.5)
    permit = await limiter.acquire()
    await asyncio.sleep(1.8)  # past the first lease

    assert renewals >= 2
    assert limiter.held == 1
    assert await store.permits.in_use(function) == 1
    await permit.release()
    await limiter.close()
    assert await store.permits.in_use(function) == 0


class CutOffRenewals(DelegatingPermits):
    """A store this holder cannot reach for renewals while `cut` is set (a network cut)."""

    def __init__(self, inner: PermitStore) -> None:
        super().__init__(inner)
        self.cut = True

    async def renew(self, function: str, token: str, lease_seconds: float) -> bool:
        if self.cut:
            raise StoreUnavailableError("Store: Redis at 'redis://test' failed to renew: timeout")
        return await self.inner.renew(function, token, lease_seconds)


async def test_a_permit_not_renewed_for_a_lease_is_lost_dropped_and_reported(
    store: Store, function: str, caplog: pytest.LogCaptureFixture
) -> None:
    cut_off = CutOffRenewals(store.permits)
    limiter = StoreLimiter(cut_off, function, 1, "test", 0.3)
    with caplog.at_level(logging.WARNING, logger="esm.dispatch.limiter"):
        permit = await limiter.acquire()
        await asyncio.sleep(0.5)
        # Meanwhile the store freed it: another holder can take the slot.
        assert await store.permits.in_use(function) == 0

        cut_off.cut = False
        await until_async(lambda: limiter.held == 0, "the lost permit is dropped")

    assert "could not renew permit" in caplog.text
    assert "expired before renewal" in caplog.text
    await permit.release()
    await limiter.close()


class FlakyPermits(DelegatingPermits):
    """A permit store that is unreachable for the first `failures` acquisitions."""

    def __init__(self, inner: PermitStore, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    async def try_acquire(self, function: str, limit: int, token: str, lease_seconds: float) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError(
                "Store: Redis at 'redis://test' failed to acquire: connection refused"
            )
        return await self.inner.try_acquire(function, limit, token, lease_seconds)


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

    limiter = make_limiter(choice.limit, store, "fn", "host:1", shared=choice.shared)

    assert type(limiter) is choice.expected
    if isinstance(limiter, StoreLimiter):
        assert limiter.lease_seconds == DEFAULT_PERMIT_LEASE_SECONDS
    await sqlite.close()


def test_a_shared_limit_without_a_store_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a store"):
        make_limiter(4, None, "fn", "host:1", shared=True)
