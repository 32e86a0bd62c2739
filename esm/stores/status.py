"""Shard status reports: what each poller says about the shards it owns, read by `esm status`.

Each poller process publishes a report per owned shard every few seconds with a short expiry;
a report that is not refreshed (its owner stopped, crashed or lost the shard) expires, so what
`read` returns is what live owners say now, across every process and host sharing the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# Shards whose checkpoint retention trimmed (records lost) are also recorded under their own key,
# kept this long: `esm status` shows the loss after the owner that saw it is gone.
DATA_LOSS_KEPT_SECONDS = 7 * 24 * 3600.0


def data_loss_key(mapping: str) -> str:
    """Where a mapping's data-loss records live beside its shard reports."""
    return f"{mapping}#data-lost"


class ShardStatusStore(Protocol):
    async def publish(
        self, mapping: str, reports: Mapping[str, Mapping[str, Any]], ttl_seconds: float, now: float
    ) -> None:
        """Stores `reports` (shard id -> JSON-able report) for `mapping`, each expiring at now + ttl."""
        ...

    async def read(self, mapping: str, now: float) -> dict[str, dict[str, Any]]:
        """The unexpired reports of `mapping`, by shard id."""
        ...
