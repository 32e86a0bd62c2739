"""The permit role: counting a function's invocations in flight across processes and hosts.

A permit is a short lease (see esm.stores.permit_rules for the decisions): its holder renews it
every third of its lease while the invocation runs and releases it at the end, so a holder that
dies or is cut off frees its permits one lease after its last renewal. Every call is atomic on
the store and keyed by a token the client makes, so a retried or late-arriving command is
harmless; expiry uses the store's clock (Redis `TIME`; on SQLite the one host's clock).
"""

from __future__ import annotations

from typing import Protocol


class PermitStore(Protocol):
    async def try_acquire(self, function: str, limit: int, token: str, lease_seconds: float) -> bool:
        """Take a permit for `function` under `token`, live for `lease_seconds` from the store's now.

        True if `token` holds a permit afterwards (also when it already did: a retry); False when
        `limit` permits are live or `token` was released before (its acquire was given up).
        """
        ...

    async def renew(self, function: str, token: str, lease_seconds: float) -> bool:
        """Move a live permit's expiry to now + lease; False if it had expired or was released."""
        ...

    async def release(self, function: str, token: str) -> None:
        """Give a permit back and refuse any later acquire with `token`. Idempotent; releasing
        a token that never took a permit (an acquire given up) is how that acquire is voided."""
        ...

    async def in_use(self, function: str) -> int:
        """How many of `function`'s permits are live now."""
        ...
