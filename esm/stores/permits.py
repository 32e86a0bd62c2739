"""The permit role: counting a function's invocations in flight across processes and hosts.

Algorithm (both backends): a function's permits are rows (SQLite) or sorted-set members (Redis)
each carrying an expiry. To acquire, in one atomic step: delete every permit of the function
whose expiry is <= now (its holder crashed or stopped renewing), count the rest, and add a new
permit expiring at now + ttl only if the count is below the limit. Holders renew long-running
permits before they expire and release them when the invocation ends. A permit that expired is
lost for good: renewing it fails, because another holder may already have taken its place.

`now` is wall-clock epoch seconds supplied by the caller, so hosts sharing a Redis store must
have roughly synchronised clocks (skew shortens or lengthens other hosts' permits by that much).
"""

from __future__ import annotations

from typing import Protocol


class PermitStore(Protocol):
    async def try_acquire(
        self, function: str, limit: int, holder: str, ttl_seconds: float, now: float
    ) -> str | None:
        """Take a permit for `function` and return its id, or None when `limit` are live at `now`.

        `holder` names the taker (host:pid) so an operator can see who holds what.
        """
        ...

    async def renew(self, function: str, permit_id: str, ttl_seconds: float, now: float) -> bool:
        """Move a live permit's expiry to now + ttl; False if it had expired or was released."""
        ...

    async def release(self, function: str, permit_id: str) -> None:
        """Give a permit back; releasing an unknown or expired permit does nothing."""
        ...

    async def in_use(self, function: str, now: float) -> int:
        """How many of `function`'s permits are live (unexpired) at `now`."""
        ...
