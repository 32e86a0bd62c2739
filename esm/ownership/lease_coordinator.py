"""Which stream shards this member processes: KCL's lease table, kept in the store
(esm.ownership.leases). Every poller process, on this host or another, is a member; the members
share the shards through it.

- Discovery lists the stream's shards every ShardDiscoveryIntervalSeconds (and at once when a
  shard ends, since its children are then known) and creates a lease for each new one; the
  lease of a finished shard that retention removed from the stream is deleted.
- The lease loop runs every third of LeaseDurationSeconds: it renews the leases held (a refused
  renewal means another member took the lease: the holder stops that shard at once), then takes
  what `LeaseTaker` plans: unowned and expired leases first, else one lease stolen from the
  busiest member, toward an even spread.
- A member that stops renewing (killed, paused, partitioned away) loses its leases when they
  expire; its checkpoint writes are refused from then on, since the store fences them by owner
  and token.
- Self-fencing: a member that could not renew a lease for LeaseDurationSeconds (the store is
  unreachable or stuck) stops that shard itself, since another member may hold the lease by
  now; once the store answers again it takes the lease back like any expired one. A watchdog
  task checks this, so a hanging store call cannot delay it.

The coordinator knows leases, not shards: it tells its `LeaseHolder` what it took or lost, and
asks it which leases it holds. It imports no source: the shard listing comes in as a callable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from esm.ownership.lease_taker import LeaseTaker
from esm.ownership.leases import Lease, LeaseStore
from esm.stores.errors import StoreError

log = logging.getLogger(__name__)

# How long stopping waits for a cancelled loop to end (a bounded wait: shutdown never hangs).
CANCEL_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class LeaseTiming:
    duration_seconds: float = 10.0
    discovery_interval_seconds: float = 30.0

    @property
    def renew_interval_seconds(self) -> float:
        return self.duration_seconds / 3


class ShardListing(Protocol):
    """A shard as a listing of the stream names it."""

    @property
    def shard_id(self) -> str: ...

    @property
    def parent_shard_ids(self) -> Sequence[str]: ...


class LeaseHolder(Protocol):
    """The member's side: what runs under the leases the coordinator takes."""

    def held(self) -> Mapping[str, int]:
        """The leases held now (shard id -> token): renewed every round, never taken again."""
        ...

    def lease_taken(self, lease: Lease, stolen_from: str | None) -> None: ...

    def lease_refused(self, shard_id: str) -> None:
        """A renewal was refused: another member holds the lease now."""
        ...


class LeaseCoordinator:
    def __init__(
        self,
        *,
        name: str,
        leases: LeaseStore,
        namespace: str,
        owner: str,
        timing: LeaseTiming,
        list_shards: Callable[[], Awaitable[Sequence[ShardListing]]],
        holder: LeaseHolder,
        describe_stream: str = "",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`name`: for logs (the mapping). `list_shards`: the stream's shards, parents before
        children. `clock`: epoch seconds, the time lease expiries are written in."""
        self._name = name
        self._leases = leases
        self.namespace = namespace
        self.owner = owner
        self._timing = timing
        self._list_shards = list_shards
        self._holder = holder
        self._stream = describe_stream
        self._clock = clock
        self._taker = LeaseTaker()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._discover_now = asyncio.Event()
        self._discovered = asyncio.Event()
        self._take_now = asyncio.Event()
        # Finished shards missing from the last listing (see _forget_gone_shards).
        self._gone_last_time: set[str] = set()
        self._stopping = False
        # Monotonic time each held lease was last renewed (or taken): its expiry, as this member
        # knows it, is one lease duration later.
        self._renewed_at: dict[str, float] = {}
        self._monotonic = monotonic

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._discovery_loop(), name=f"discovery-{self._name[:8]}"),
            asyncio.create_task(self._lease_loop(), name=f"leases-{self._name[:8]}"),
            asyncio.create_task(self._fence_loop(), name=f"fence-{self._name[:8]}"),
        ]

    async def stop(self) -> None:
        """Stops discovery and the lease loop (held leases stay until released or expired)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CANCEL_WAIT_SECONDS)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """Discovery, the lease loop and the self-fencing watchdog."""
        return list(self._tasks)

    def discover_now(self) -> None:
        self._discover_now.set()

    def take_now(self) -> None:
        self._take_now.set()

    def children_found(self, children: Collection[ShardListing]) -> None:
        """A shard ended and named its children: create their leases now rather than at the next
        listing, so they start as soon as their parents are done."""
        self.in_background(self._ensure_children(children))

    async def release(self, shard_id: str, token: int, after: float = 0.0) -> None:
        """Gives a lease up (after `after` seconds), so a peer takes it without waiting for expiry."""
        if after > 0:
            await asyncio.sleep(after)
        try:
            await self._leases.release(self.namespace, shard_id, self.owner, token)
        except StoreError as err:
            log.warning("mapping %s: cannot release %s (it expires instead): %s", self._name, shard_id, err)

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)  # referenced until done: the loop keeps only weak references
        task.add_done_callback(self._background.discard)

    # -- discovery -------------------------------------------------------------------------------

    async def _discovery_loop(self) -> None:
        while not self._stopping:
            try:
                shards = await self._list_shards()
                leases = await self._leases.list(self.namespace)
                known = {lease.shard_id for lease in leases}
                for shard in shards:  # parents come before their children
                    if shard.shard_id not in known:
                        await self._leases.ensure(self.namespace, shard.shard_id, shard.parent_shard_ids)
                await self._forget_gone_shards(leases, {shard.shard_id for shard in shards})
                self._discovered.set()
                self._take_now.set()
            except StoreError as err:
                log.warning("mapping %s: cannot record the shards in the store: %s", self._name, err)
            except Exception as err:  # boto3 errors, translated or not: retried at the next round
                log.error("mapping %s: cannot list the shards of %s: %s", self._name, self._stream, err)
            self._discover_now.clear()
            await _until_set(self._discover_now, self._timing.discovery_interval_seconds)

    async def _forget_gone_shards(self, leases: Sequence[Lease], listed: set[str]) -> None:
        """Deletes the leases of finished shards the stream no longer has (retention removed
        them), so the lease table does not grow with every reshard. A lease goes only when its
        shard was missing from two listings in a row (a listing is never trusted alone) and
        every child of it has a checkpoint (a child without one still asks whether it
        continues a parent of this mapping)."""
        gone = {
            lease.shard_id
            for lease in leases
            if lease.is_finished
            and lease.shard_id not in listed
            and all(
                child.checkpoint is not None for child in leases if lease.shard_id in child.parent_shard_ids
            )
        }
        for shard_id in gone & self._gone_last_time:
            if await self._leases.delete_finished(self.namespace, shard_id):
                log.info("mapping %s: %s is gone from the stream; its lease is deleted", self._name, shard_id)
        self._gone_last_time = gone

    async def _ensure_children(self, children: Collection[ShardListing]) -> None:
        try:
            for child in children:
                await self._leases.ensure(self.namespace, child.shard_id, child.parent_shard_ids)
        except StoreError as err:
            log.warning("mapping %s: cannot record child shards: %s", self._name, err)
        self._discover_now.set()
        self._take_now.set()

    # -- leases ----------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        await self._discovered.wait()
        while not self._stopping:
            try:
                # A store that hangs must not hold renewals up past a lease (the next round
                # renews from scratch).
                async with asyncio.timeout(self._timing.duration_seconds):
                    await self._renew()
                    await self._take()
            except StoreError as err:
                log.warning("mapping %s: lease store unavailable: %s", self._name, err)
            except TimeoutError:
                log.warning(
                    "mapping %s: lease store did not answer within %.1fs",
                    self._name,
                    self._timing.duration_seconds,
                )
            self._take_now.clear()
            await _until_set(self._take_now, self._timing.renew_interval_seconds)

    async def _fence_loop(self) -> None:
        """The self-fencing watchdog: apart from the lease loop, which a slow store can hold up."""
        while not self._stopping:
            await asyncio.sleep(self._timing.renew_interval_seconds / 4)
            self._fence_unrenewed()

    def _fence_unrenewed(self) -> None:
        """Stops the shards whose lease went a whole duration without a renewal."""
        held = self._holder.held()
        for shard_id in list(self._renewed_at):
            if shard_id not in held:
                del self._renewed_at[shard_id]
        now = self._monotonic()
        for shard_id in held:
            renewed_at = self._renewed_at.setdefault(shard_id, now)
            if now - renewed_at >= self._timing.duration_seconds:
                log.warning(
                    "mapping %s: could not renew the lease of %s for %.1fs (LeaseDurationSeconds): "
                    "stopping it, another member may hold it now",
                    self._name,
                    shard_id,
                    now - renewed_at,
                )
                del self._renewed_at[shard_id]
                self._holder.lease_refused(shard_id)

    async def _renew(self) -> None:
        now = self._clock()
        sent_at = self._monotonic()
        for shard_id, token in list(self._holder.held().items()):
            renewed = await self._leases.renew(
                self.namespace, shard_id, self.owner, token, self._timing.duration_seconds, now
            )
            if renewed:
                self._renewed_at[shard_id] = sent_at
            else:
                self._holder.lease_refused(shard_id)

    async def _take(self) -> None:
        if self._stopping:
            return
        now = self._clock()
        sent_at = self._monotonic()
        leases = await self._leases.list(self.namespace)
        held = self._holder.held()
        for lease in self._taker.plan(leases, self.owner, (), now):
            if lease.shard_id in held:
                continue  # my own lease, expired before I renewed it: renewed next round
            taken = await self._leases.take(
                self.namespace, lease.shard_id, self.owner, lease.token, self._timing.duration_seconds, now
            )
            if taken is None:
                continue  # someone else changed it since it was read
            stolen = lease.owner is not None and lease.owner != self.owner and not lease.is_expired(now)
            log.info(
                "mapping %s: took %s%s", self._name, lease.shard_id, f" from {lease.owner}" if stolen else ""
            )
            self._renewed_at[lease.shard_id] = sent_at
            self._holder.lease_taken(taken, lease.owner if stolen else None)


async def _until_set(event: asyncio.Event, timeout: float) -> None:
    """Waits for `event`, at most `timeout` seconds. (asyncio.timeout rather than wait_for: on
    Python 3.11 wait_for can swallow a cancellation that races its timeout, and these loops must
    stop when shutdown cancels them.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
