"""The wait for a child shard's parents (after a split, a merge or UpdateShardCount): a child
starts only after each parent reached SHARD_END with its last record processed, so per key no
child record is delivered before its parent's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from esm.ownership.leases import LeaseStore
from esm.shard.waits import Waits

# How often a shard waiting on its parents looks at their leases again.
PARENT_CHECK_INTERVAL_SECONDS = 1.0


async def wait_for_parents(
    store: LeaseStore,
    namespace: str,
    parents: Sequence[str],
    halt: asyncio.Event,
    waits: Waits,
    interval: float = PARENT_CHECK_INTERVAL_SECONDS,
) -> bool | None:
    """Waits until every parent's lease says SHARD_END. Returns whether the shard continues a
    parent this mapping read (one of them has a lease), or None when `halt` was set first.

    A parent without a lease was gone from the stream before this mapping first listed it:
    nothing of it is left to read or to wait for."""
    while True:
        leases = {lease.shard_id: lease for lease in await store.list(namespace)}
        known = [parent for parent in parents if parent in leases]
        if all(leases[parent].is_finished for parent in known):
            return None if halt.is_set() else bool(known)
        if await waits.halted_within(halt, interval):
            return None
