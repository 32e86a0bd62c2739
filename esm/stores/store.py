"""The `Store`: one object per store URL, exposing one object per role.

Roles: `permits` (concurrency limits), `status` (shard reports for `esm status`), `leases`
(shard ownership and fenced checkpoints for stream sources) and `mappings` (those created
through the control API); tumbling-window state joins them
as a further role attribute, each backed by both SQLite and Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from esm.ownership.leases import LeaseStore
from esm.stores.mappings import MappingRegistry
from esm.stores.permits import PermitStore
from esm.stores.status import ShardStatusStore


@dataclass(frozen=True, eq=False)
class Store:
    # The store's URL without any password, for logs and messages.
    url: str
    # True when the store lives on this host only (SQLite): processes on other hosts cannot
    # share it, so a lone process may keep its limits in memory instead.
    is_local: bool
    permits: PermitStore
    status: ShardStatusStore
    leases: LeaseStore
    # Mappings created through the control API.
    mappings: MappingRegistry
    _close: Callable[[], Awaitable[None]] = field(repr=False)

    async def close(self) -> None:
        """Close the connection(s). The roles must not be used afterwards."""
        await self._close()
