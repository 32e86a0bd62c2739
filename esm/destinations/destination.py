"""The one interface every on-failure destination implements."""

from __future__ import annotations

from typing import Any, Protocol


class Destination(Protocol):
    """Writes failure records somewhere durable.

    `send` returns only once the record is stored (fsynced, acknowledged by Redis, or by all
    in-sync Kafka replicas); otherwise it raises DestinationError, whose `retryable` tells the
    engine whether to try the same record again.
    """

    async def send(self, record: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...
