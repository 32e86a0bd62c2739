"""Holding a function under its concurrency limit (ReservedConcurrentExecutions).

The invoker wraps every invocation in `permit = await limiter.acquire()` ... `await
permit.release()`. Waiting for room is backpressure (the caller counts a throttle when
`permit.waited`), never an error. Three implementations, chosen by `make_limiter`:

- `UnlimitedLimiter`: the function has no limit.
- `LocalLimiter`: an asyncio semaphore, when this process is the only one invoking the function.
- `StoreLimiter`: permits in the shared store (see esm.stores.permits), when several poller
  processes or hosts invoke the function. When the store is full it polls with a short capped
  backoff, and a release in this process wakes one local waiter at once. Permits are short
  leases a background task renews while they are held, so a dead holder's permits come back
  one lease (PermitLeaseSeconds) after its last renewal, however long the function's Timeout.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Awaitable, Coroutine
from typing import Protocol, TypeVar

from esm.stores import PermitStore, Store, StoreError, StoreUnavailableError
from esm.stores.permit_rules import GIVEN_UP_MEMORY_SECONDS

T = TypeVar("T")

logger = logging.getLogger(__name__)

# PermitLeaseSeconds' default: how long a dead or cut-off holder's permits keep blocking others.
DEFAULT_PERMIT_LEASE_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.001
MAX_BACKOFF_SECONDS = 0.02
# While the store fails, retry this often at most (and log once per outage).
MAX_STORE_ERROR_BACKOFF_SECONDS = 1.0
# Renew held permits this many times per lease, so one late or failed renewal is not fatal.
RENEWALS_PER_LEASE = 3


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
    __slots__ = ("_limiter", "token")

    def __init__(self, waited: bool, limiter: StoreLimiter, token: str) -> None:
        super().__init__(waited)
        self._limiter = limiter
        self.token = token

    async def _free(self) -> None:
        await self._limiter._give_back(self.token)


class StoreLimiter:
    """The limit held as permits in a shared store, across processes and hosts.

    Permits are leases of `lease_seconds`, renewed every third of it while held. Every store
    call is bounded by that third too: a store that does not answer in time is failing, and
    an acquire whose answer never came is voided by releasing its token (retried until the
    store answers), so it can never leave a permit that nobody holds.
    """

    def __init__(
        self,
        permits: PermitStore,
        function: str,
        limit: int,
        holder: str,
        lease_seconds: float,
        *,
        first_backoff_seconds: float = FIRST_BACKOFF_SECONDS,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        store_error_backoff_seconds: float = MAX_STORE_ERROR_BACKOFF_SECONDS,
    ) -> None:
        _check_limit(limit)
        if lease_seconds <= 0:
            raise ValueError(
                f"StoreLimiter for function {function!r}: lease_seconds must be > 0, got {lease_seconds}"
            )
        self._permits = permits
        self._function = function
        self._limit = limit
        self._holder = holder
        self._lease = lease_seconds
        self._call_timeout = lease_seconds / RENEWALS_PER_LEASE
        self._first_backoff = first_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._store_error_backoff = store_error_backoff_seconds
        # Tokens of the permits this process holds and renews (one lost to expiry leaves the set).
        self._held: set[str] = set()
        # Local waiters, oldest first; a release here resolves the first one.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._renewer: asyncio.Task[None] | None = None
        # Releases that must finish even if their caller is cancelled or has moved on.
        self._background: set[asyncio.Task[None]] = set()
        self._store_failing = False

    @property
    def lease_seconds(self) -> float:
        return self._lease

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
                token = f"{self._holder}/{uuid.uuid4().hex}"
                try:
                    taken = await self._try_acquire(token)
                except StoreError as exc:
                    self._note_store_failure(exc)
                    waited = True
                    await self._wait_for_release(self._store_error_backoff)
                    continue
                self._note_store_recovered()
                if taken:
                    self._hold(token)
                    return _StorePermit(waited, self, token)
            waited = True
            await self._wait_for_release(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def renew_held(self) -> None:
        """Renew every permit held here once (the background renewer calls this)."""
        await asyncio.gather(*(self._renew(token) for token in list(self._held)))

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        if self._background:
            # Releases still retrying against a failing store give up: their permits expire.
            _, pending = await asyncio.wait(self._background, timeout=self._call_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _try_acquire(self, token: str) -> bool:
        """One attempt. Unanswered (store error, timeout) or cancelled, its token is voided."""
        call = self._bounded(self._permits.try_acquire(self._function, self._limit, token, self._lease))
        try:
            return await call
        except (StoreError, asyncio.CancelledError):
            self._in_background(self._release_in_store(token))
            raise

    async def _renew(self, token: str) -> None:
        try:
            renewed = await self._bounded(self._permits.renew(self._function, token, self._lease))
        except StoreError as exc:
            self._note_store_failure(exc, f"could not renew permit {token} (will retry)")
            return
        self._note_store_recovered()
        if not renewed and token in self._held:
            # It expired before we renewed it: another holder may have its slot, so the
            # function can briefly run above its limit. Stop renewing what is gone.
            self._held.discard(token)
            logger.warning(
                "permit %s of function %r expired before renewal; its slot may be reused",
                token,
                self._function,
            )

    async def _bounded(self, call: Awaitable[T]) -> T:
        """`call`, failed as a store error if the store does not answer within a third of a lease."""
        try:
            async with asyncio.timeout(self._call_timeout):
                return await call
        except TimeoutError as exc:
            raise StoreUnavailableError(
                f"permit store did not answer within {self._call_timeout:g} s (a third of PermitLeaseSeconds)"
            ) from exc

    def _hold(self, token: str) -> None:
        self._held.add(token)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(
                self._renew_while_held(), name=f"permit-renewer[{self._function}]"
            )

    async def _renew_while_held(self) -> None:
        # Ends once nothing is held; the next acquire starts it again.
        while self._held:
            await asyncio.sleep(self._lease / RENEWALS_PER_LEASE)
            await self.renew_held()

    async def _give_back(self, token: str) -> None:
        self._held.discard(token)
        release = self._in_background(self._release_in_store(token))
        # Wait for one attempt at most (a cancelled caller does not stop it): if the store is
        # failing, the release goes on retrying in the background.
        await asyncio.wait([release], timeout=self._call_timeout)

    async def _release_in_store(self, token: str) -> None:
        """Release `token`, retrying while the store fails, for as long as the store remembers
        given-up tokens; a permit still held past that frees itself within one lease."""
        give_up_at = time.monotonic() + GIVEN_UP_MEMORY_SECONDS
        delay = self._store_error_backoff / 8
        logged = False
        try:
            while True:
                try:
                    await self._bounded(self._permits.release(self._function, token))
                    return
                except StoreError as exc:
                    if not logged:
                        self._note_store_failure(
                            exc,
                            f"could not release permit {token} "
                            f"(retrying; it frees itself within {self._lease:g} s)",
                        )
                    logged = True
                    if time.monotonic() >= give_up_at:
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._store_error_backoff)
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

    def _note_store_failure(self, exc: StoreError, what: str = "invocations wait until it recovers") -> None:
        """Logged once per outage: while the store is unreachable every permit call fails."""
        if not self._store_failing:
            logger.warning("permit store failing for function %r; %s: %s", self._function, what, exc)
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
    shared: bool,
    lease_seconds: float = DEFAULT_PERMIT_LEASE_SECONDS,
) -> ConcurrencyLimiter:
    """The limiter for one function.

    `limit` is ReservedConcurrentExecutions (None: unlimited). `shared` says whether other
    poller processes on this host invoke the function too. A local store (SQLite) with
    `shared=False` keeps the limit in memory; a store that spans hosts (Redis) always holds it
    in the store, since other hosts may invoke the function. `holder` names this process in
    the store (host:pid); `lease_seconds` is PermitLeaseSeconds: how long a permit lasts unless
    renewed, so how soon a dead or cut-off holder's permits come back.
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
    return StoreLimiter(store.permits, function, limit, holder, lease_seconds)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(
            f"concurrency limit must be >= 1, got {limit} (a function reserved at 0 cannot be invoked: "
            "disable its mappings instead)"
        )
