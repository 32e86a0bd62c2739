"""`esm_shards_unowned`: how many of a stream mapping's shards no live member holds, counted each
time this member reads the lease table (discovery and every lease round do), as `esm status`
counts them (esm.status.stream_leases.unowned_shards).

It wraps the mapping's LeaseStore, so the lease loop needs no metrics of its own.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from esm.ownership.leases import Lease, LeaseStore
from esm.status.stream_leases import unowned_shards


class GaugeChild(Protocol):
    def set(self, value: float) -> None: ...


class UnownedShardsGauge:
    """A LeaseStore that sets `gauge` to the unowned shards of every lease list it reads."""

    def __init__(self, leases: LeaseStore, gauge: GaugeChild, clock: Callable[[], float] = time.time) -> None:
        self._leases = leases
        self._gauge = gauge
        self._clock = clock

    async def list(self, stream: str) -> builtins.list[Lease]:
        leases = await self._leases.list(stream)
        self._gauge.set(unowned_shards(leases, self._clock()))
        return leases

    async def ensure(self, stream: str, shard_id: str, parents: Sequence[str]) -> Lease:
        return await self._leases.ensure(stream, shard_id, parents)

    async def take(
        self, stream: str, shard_id: str, owner: str, expected_token: int, ttl: float, now: float
    ) -> Lease | None:
        return await self._leases.take(stream, shard_id, owner, expected_token, ttl, now)

    async def renew(self, stream: str, shard_id: str, owner: str, token: int, ttl: float, now: float) -> bool:
        return await self._leases.renew(stream, shard_id, owner, token, ttl, now)

    async def release(self, stream: str, shard_id: str, owner: str, token: int) -> bool:
        return await self._leases.release(stream, shard_id, owner, token)

    async def checkpoint(
        self, stream: str, shard_id: str, owner: str, token: int, sequence: str, now: float
    ) -> bool:
        return await self._leases.checkpoint(stream, shard_id, owner, token, sequence, now)

    async def delete_finished(self, stream: str, shard_id: str) -> bool:
        return await self._leases.delete_finished(stream, shard_id)
