"""Holding a function under its concurrency limit (ReservedConcurrentExecutions).

The invoker wraps every invocation in `permit = await limiter.acquire()` ... `await
permit.release()`. Waiting for room is backpressure (the caller counts a throttle when
`permit.waited`), never an error. Three implementations, chosen by `make_limiter`:

- `UnlimitedLimiter`: the function has no limit.
- `LocalLimiter`: an asyncio semaphore, when this process is the only one invoking the function.
- `StoreLimiter`: permits in the shared store (see esm.stores.permits), when several poller
  processes or hosts invoke the function. When the store is full it polls with a short capped
  backoff, and a release in this process wakes one local waiter at once. Permits carry an
  expiry so a crashed holder's permits come back; a background task renews held ones.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Protocol

from esm.stores import PermitStore, Store, StoreError

logger = logging.getLogger(__name__)

# A permit outlives the function's Timeout by this much, so it cannot expire under an invocation
# even if the renewer is late; it is also how long a crashed holder's permit blocks others.
PERMIT_TTL_MARGIN_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 0.001
MAX_BACKOFF_SECONDS = 0.02
# While the store fails, retry this often at most (and log once per outage).
MAX_STORE_ERROR_BACKOFF_SECONDS = 1.0
# Renew held permits this many times per ttl, so one late or failed renewal is not fatal.
RENEWALS_PER_TTL = 3


class Permit:
    """One slot of a function's concurrency, held for one invocation."""

    __slots__ = ("_released", "waited")

    def __init__(self, waited: bool) -> None:
        # True if acquire had to wait for room: the caller counts a throttle.
        self.waited = waited
        self._released = False

    async def release(self) -> None:
        """Give the slot back. Idempotent: later calls do nothing."""
        if self._released:
            return
        self._released = True
        await self._free()

    async def _free(self) -> None:
        """What giving the slot back means; nothing for an unlimited function."""


class ConcurrencyLimiter(Protocol):
    async def acquire(self) -> Permit:
        """Wait until the function has room and take a slot. Cancellable while waiting."""
        ...

    async def close(self) -> None:
        """Stop background work. Permits still held expire (store) or simply vanish (local)."""
        ...


class UnlimitedLimiter:
    """No ReservedConcurrentExecutions: never waits."""

    async def acquire(self) -> Permit:
        return Permit(waited=False)

    async def close(self) -> None:
        return None


class _LocalPermit(Permit):
    __slots__ = ("_semaphore",)

    def __init__(self, waited: bool, semaphore: asyncio.Semaphore) -> None:
        super().__init__(waited)
        self._semaphore = semaphore

    async def _free(self) -> None:
        self._semaphore.release()


class LocalLimiter:
    """The limit held in this process only: right when no other process invokes the function."""

    def __init__(self, limit: int) -> None:
        _check_limit(limit)
        self._semaphore = asyncio.Semaphore(limit)

    async def acquire(self) -> Permit:
        # locked() is also True while earlier waiters queue, so a newcomer cannot jump them.
        waited = self._semaphore.locked()
        await self._semaphore.acquire()
        return _LocalPermit(waited, self._semaphore)

    async def close(self) -> None:
        return None


class _StorePermit(Permit):
    __slots__ = ("_limiter", "permit_id")

    def __init__(self, waited: bool, limiter: StoreLimiter, permit_id: str) -> None:
        super().__init__(waited)
        self._limiter = limiter
        self.permit_id = permit_id

    async def _free(self) -> None:
        await self._limiter._give_back(self.permit_id)


class StoreLimiter:
    """The limit held as permits in a shared store, across processes and hosts."""

    def __init__(
        self,
        permits: PermitStore,
        function: str,
        limit: int,
        holder: str,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
        *,
        first_backoff_seconds: float = FIRST_BACKOFF_SECONDS,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        store_error_backoff_seconds: float = MAX_STORE_ERROR_BACKOFF_SECONDS,
    ) -> None:
        _check_limit(limit)
        if ttl_seconds <= 0:
            raise ValueError(
                f"StoreLimiter for function {function!r}: ttl_seconds must be > 0, got {ttl_seconds}"
            )
        self._permits = permits
        self._function = function
        self._limit = limit
        self._holder = holder
        self._ttl = ttl_seconds
        self._clock = clock
        self._first_backoff = first_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._store_error_backoff = store_error_backoff_seconds
        # Permits this process holds and still renews (a permit lost to expiry leaves the set).
        self._held: set[str] = set()
        # Local waiters, oldest first; a release here resolves the first one.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._renewer: asyncio.Task[None] | None = None
        # Releases and orphan clean-ups that must finish even if their caller is cancelled.
        self._background: set[asyncio.Task[None]] = set()
        self._store_failing = False

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    @property
    def held(self) -> int:
        """Permits this process holds now."""
        return len(self._held)

    async def acquire(self) -> Permit:
        waited = False
        backoff = self._first_backoff
        while True:
            # Holding `limit` here already, the store cannot have room: just wait for a release.
            if len(self._held) < self._limit:
                try:
                    permit_id = await self._try_acquire()
                except StoreError as exc:
                    self._note_store_failure(exc)
                    waited = True
                    await self._wait_for_release(self._store_error_backoff)
                    continue
                self._note_store_recovered()
                if permit_id is not None:
                    self._hold(permit_id)
                    return _StorePermit(waited, self, permit_id)
            waited = True
            await self._wait_for_release(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def renew_held(self) -> None:
        """Renew every permit held here once (the background renewer calls this)."""
        now = self._clock()
        for permit_id in list(self._held):
            try:
                renewed = await self._permits.renew(self._function, permit_id, self._ttl, now)
            except StoreError as exc:
                logger.warning(
                    "could not renew permit %s of function %r (will retry): %s",
                    permit_id,
                    self._function,
                    exc,
                )
                continue
            if not renewed and permit_id in self._held:
                # It expired before we renewed it: another holder may have its slot, so the
                # function can briefly run above its limit. Stop renewing what is gone.
                self._held.discard(permit_id)
                logger.warning(
                    "permit %s of function %r expired before renewal; its slot may be reused",
                    permit_id,
                    self._function,
                )

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _try_acquire(self) -> str | None:
        """One attempt. If our caller is cancelled meanwhile, a permit it took is given back."""
        attempt = asyncio.ensure_future(
            self._permits.try_acquire(self._function, self._limit, self._holder, self._ttl, self._clock())
        )
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            self._in_background(self._release_orphan(attempt))
            raise

    async def _release_orphan(self, attempt: asyncio.Future[str | None]) -> None:
        try:
            permit_id = await attempt
        except StoreError:
            return
        if permit_id is not None:
            await self._release_in_store(permit_id)

    def _hold(self, permit_id: str) -> None:
        self._held.add(permit_id)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(
                self._renew_while_held(), name=f"permit-renewer[{self._function}]"
            )

    async def _renew_while_held(self) -> None:
        # Ends once nothing is held; the next acquire starts it again.
        while self._held:
            await asyncio.sleep(self._ttl / RENEWALS_PER_TTL)
            await self.renew_held()

    async def _give_back(self, permit_id: str) -> None:
        self._held.discard(permit_id)
        # Shielded: an invocation cancelled during release must still free its slot.
        await asyncio.shield(self._in_background(self._release_in_store(permit_id)))

    async def _release_in_store(self, permit_id: str) -> None:
        try:
            await self._permits.release(self._function, permit_id)
        except StoreError as exc:
            logger.warning(
                "could not release permit %s of function %r; it frees itself when it expires: %s",
                permit_id,
                self._function,
                exc,
            )
        finally:
            self._wake_one()

    def _in_background(self, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _wait_for_release(self, timeout: float) -> None:
        """Sleep up to `timeout`, or less if a permit is released in this process."""
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(wake)
        try:
            async with asyncio.timeout(timeout):
                await wake
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            # Woken and then cancelled: hand the wake-up on to the next waiter.
            if wake.done() and not wake.cancelled():
                self._wake_one()
            raise
        finally:
            if wake in self._waiters:
                self._waiters.remove(wake)

    def _wake_one(self) -> None:
        while self._waiters:
            wake = self._waiters.popleft()
            if not wake.done():
                wake.set_result(None)
                return

    def _note_store_failure(self, exc: StoreError) -> None:
        if not self._store_failing:
            logger.warning(
                "permit store failing for function %r; invocations wait until it recovers: %s",
                self._function,
                exc,
            )
        self._store_failing = True

    def _note_store_recovered(self) -> None:
        if self._store_failing:
            logger.info("permit store recovered for function %r", self._function)
        self._store_failing = False


def make_limiter(
    limit: int | None,
    store: Store | None,
    function: str,
    holder: str,
    timeout_seconds: float,
    shared: bool,
    clock: Callable[[], float] = time.time,
) -> ConcurrencyLimiter:
    """The limiter for one function.

    `limit` is ReservedConcurrentExecutions (None: unlimited). `shared` says whether other
    poller processes on this host invoke the function too. A local store (SQLite) with
    `shared=False` keeps the limit in memory; a store that spans hosts (Redis) always holds it
    in the store, since other hosts may invoke the function. `holder` names this process in
    the store (host:pid); `timeout_seconds` is the function's Timeout.
    """
    if limit is None:
        return UnlimitedLimiter()
    if store is None:
        if shared:
            raise ValueError(
                f"function {function!r}: a limit shared between processes needs a store (store is None)"
            )
        return LocalLimiter(limit)
    if store.is_local and not shared:
        return LocalLimiter(limit)
    return StoreLimiter(
        store.permits, function, limit, holder, timeout_seconds + PERMIT_TTL_MARGIN_SECONDS, clock
    )


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(
            f"concurrency limit must be >= 1, got {limit} (a function reserved at 0 cannot be invoked: "
            "disable its mappings instead)"
        )
