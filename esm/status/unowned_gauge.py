"""`esm_shards_unowned`: how many of a stream mapping's shards no live member holds, counted each
time this member reads the lease table (discovery and every lease round do), as `esm status`
counts them (esm.status.stream_leases.unowned_shards).

It wraps the mapping's LeaseStore, so the lease loop needs no metrics of its own. Given a
`label`, it also says (a warning, once per spell) when no live member has held any of the
stream's unfinished shards for longer than `wait_seconds` (LeaseDurationSeconds), and when one
does again: silence would hide that nothing is being read.
"""

from __future__ import annotations

import builtins
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from esm.ownership.leases import Lease, LeaseStore
from esm.sources.outage_notices import Notice, OutageNotices, Said
from esm.status.stream_leases import unowned_shards

log = logging.getLogger(__name__)


class GaugeChild(Protocol):
    def set(self, value: float) -> None: ...


class UnownedShardsGauge:
    """A LeaseStore that sets `gauge` to the unowned shards of every lease list it reads."""

    def __init__(
        self,
        leases: LeaseStore,
        gauge: GaugeChild,
        clock: Callable[[], float] = time.time,
        label: str | None = None,
        wait_seconds: float = 10.0,
    ) -> None:
        """`label`: "mapping <UUID> (function <name>, stream <ARN>)", to warn about a stream
        nobody reads."""
        self._leases = leases
        self._gauge = gauge
        self._clock = clock
        self._label = label
        self._wait_seconds = wait_seconds
        self._nobody_reads = OutageNotices(wait_seconds, repeat_every=math.inf)

    async def list(self, stream: str) -> builtins.list[Lease]:
        leases = await self._leases.list(stream)
        now = self._clock()
        unowned = unowned_shards(leases, now)
        self._gauge.set(unowned)
        if self._label is not None:
            unfinished = sum(1 for lease in leases if not lease.is_finished)
            said = self._nobody_reads.observe(not unfinished or unowned < unfinished, now)
            if said is not None:
                self._say(said, unfinished)
        return leases

    def _say(self, said: Said, shards: int) -> None:
        if said.notice is Notice.BACK:
            log.warning("%s: its shards are owned again after %.0fs", self._label, said.down_seconds)
            return
        log.warning(
            "%s: none of its %d shards owned by a live member after %.0fs "
            "(LeaseDurationSeconds %g); waiting for a lease to be taken",
            self._label,
            shards,
            said.down_seconds,
            self._wait_seconds,
        )

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
