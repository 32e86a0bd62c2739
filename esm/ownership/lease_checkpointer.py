"""A stream shard's checkpoint in the lease table, written by the lease's holder only.

Writes go out one at a time, each of the newest position asked for (a write is never behind
the stored checkpoint, which the store would refuse as stale), fenced by (owner, token): a
refused write means another member holds the lease now, and the shard stops at once. A store
that cannot be reached is retried for a while; if it stays down the shard stops as if the lease
were lost (the lease expires and the shard is read again from the last checkpoint written).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from esm.ownership.leases import SHARD_END, LeaseStore
from esm.shard.waits import Waits
from esm.stores.errors import StoreError

log = logging.getLogger(__name__)

R = TypeVar("R")

# Waits between attempts to write a checkpoint to a store that cannot be reached.
STORE_RETRY_DELAYS_SECONDS = (0.2, 0.5, 1.0, 2.0)


class LeaseCheckpointer(Generic[R]):
    def __init__(
        self,
        store: LeaseStore,
        namespace: str,
        shard_id: str,
        owner: str,
        token: int,
        written: str | None,
        sequence_of: Callable[[R], str],
        wall_clock: Callable[[], float],
        waits: Waits,
        on_refused: Callable[[], None],
    ) -> None:
        """`written`: the lease's checkpoint when it was taken. `on_refused`: the lease is gone."""
        self._store = store
        self._namespace = namespace
        self._shard_id = shard_id
        self._owner = owner
        self._token = token
        self._sequence_of = sequence_of
        self._wall_clock = wall_clock
        self._waits = waits
        self._on_refused = on_refused
        self._lock = asyncio.Lock()
        self._wanted: str | None = None
        self._abandoned = asyncio.Event()
        self.written = written
        self.refused = False

    @property
    def owned(self) -> bool:
        return not self.refused and not self._abandoned.is_set()

    def abandon(self) -> None:
        """The lease is gone: stop retrying writes."""
        self._abandoned.set()

    async def checkpoint_through(self, record: R) -> bool:
        self._wanted = self._sequence_of(record)
        return await self._write()

    async def checkpoint_end(self) -> bool:
        """Every record of the shard was processed: its children may start."""
        self._wanted = SHARD_END
        return await self._write()

    async def _write(self) -> bool:
        if self.refused:
            return False
        async with self._lock:
            position = self._wanted
            if position is None or position == self.written or self.refused:
                return not self.refused
            if not await self._fenced_write(position):
                self.refused = True
                self._on_refused()
                return False
            self.written = position
            return True

    async def _fenced_write(self, position: str) -> bool:
        for delay in (*STORE_RETRY_DELAYS_SECONDS, None):
            try:
                return await self._store.checkpoint(
                    self._namespace, self._shard_id, self._owner, self._token, position, self._wall_clock()
                )
            except StoreError as err:
                if delay is None:
                    log.error("shard %s: cannot write its checkpoint (%s); stopping it", self._shard_id, err)
                    return False
                log.warning("shard %s: cannot write its checkpoint (%s); retrying", self._shard_id, err)
                if await self._waits.halted_within(self._abandoned, delay):
                    return False
        raise AssertionError("unreachable: the last attempt returns")
