"""A Redis stream: each failure record is one entry (XADD) with a single field `record` = the JSON.

The client does not retry on its own (the engine does, for as long as the error is retryable),
and its socket timeouts are short, so a Redis that is down is reported within seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

import esm.redis_client
from esm.destinations.encoding import StoredEntry, UnreadableEntry, encode_record, read_entry
from esm.destinations.errors import DestinationError, DestinationRejectedError, DestinationUnavailableError

RECORD_FIELD = b"record"
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 5.0
_READ_PAGE = 200

# Checked in order (subclasses first): which Redis failures pass on their own.
_RETRYABLE_BY_TYPE: tuple[tuple[type[Exception], bool], ...] = (
    (redis.exceptions.AuthenticationError, False),
    (redis.exceptions.AuthorizationError, False),
    (redis.exceptions.NoPermissionError, False),
    (redis.exceptions.OutOfMemoryError, True),
    (redis.exceptions.ReadOnlyError, True),  # a replica during failover
    (redis.exceptions.TryAgainError, True),
    (redis.exceptions.ClusterDownError, True),
    (redis.exceptions.ConnectionError, True),  # BusyLoadingError and MaxConnectionsError included
    (redis.exceptions.TimeoutError, True),
    (OSError, True),  # socket errors redis-py did not wrap, TimeoutError included
)
# What a Redis call can raise that `translate` maps; anything else is a bug and propagates.
REDIS_FAILURES = (redis.exceptions.RedisError, OSError)


def open_redis_client(
    client_url: str,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_SECONDS,
    command_timeout_s: float = COMMAND_TIMEOUT_SECONDS,
) -> redis.asyncio.Redis:
    """An asyncio client that fails fast: no built-in retries, short socket timeouts."""
    return esm.redis_client.Redis.from_url(
        client_url,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=command_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


class RedisStreamDestination:
    """XADDs each record to `stream`; `send` returns once Redis has acknowledged the entry."""

    def __init__(self, client: redis.asyncio.Redis, stream: str, display_url: str) -> None:
        self._client = client
        self._stream = stream
        self._where = f"Redis stream {stream!r} at {display_url!r}"

    async def send(self, record: dict[str, Any]) -> None:
        data = encode_record(record)
        try:
            await self._client.xadd(self._stream, {RECORD_FIELD: data})
        except REDIS_FAILURES as exc:
            raise translate(exc, self._where, "add a record") from exc

    async def close(self) -> None:
        await self._client.aclose()


async def read_stream_records(
    client: redis.asyncio.Redis, stream: str, display_url: str
) -> AsyncIterator[StoredEntry]:
    """Every entry of the stream, oldest first, page by page, as a record or an `UnreadableEntry`.
    A stream that does not exist is an error (nothing was ever written there, or a wrong name)."""
    where = f"Redis stream {stream!r} at {display_url!r}"
    try:
        exists = await client.exists(stream)
    except REDIS_FAILURES as exc:
        raise translate(exc, where, "read records") from exc
    if not exists:
        raise DestinationRejectedError(
            f"Destination: {where} does not exist (no failure record was ever written there, or the "
            "stream name is wrong)"
        )
    start = "-"
    while True:
        try:
            page = await client.xrange(stream, min=start, max="+", count=_READ_PAGE) or []
        except REDIS_FAILURES as exc:
            raise translate(exc, where, "read records") from exc
        for entry_id, fields in page:
            entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            data = (fields or {}).get(RECORD_FIELD)
            if data is None:
                yield UnreadableEntry(f"{where} entry {entry}", "has no `record` field")
            else:
                yield read_entry(data, f"{where} entry {entry}")
        if len(page) < _READ_PAGE:
            return
        start = f"({entry}"  # exclusive: the next page starts after the last entry read


def translate(exc: Exception, where: str, action: str) -> DestinationError:
    """The destination error for a Redis failure; connection trouble and a full Redis are retryable.

    Anything not in the table (e.g. WRONGTYPE: the key is not a stream) is permanent.
    """
    message = f"Destination: {where} failed to {action}: {type(exc).__name__}: {exc}"
    retryable = next((flag for exc_type, flag in _RETRYABLE_BY_TYPE if isinstance(exc, exc_type)), False)
    return DestinationUnavailableError(message) if retryable else DestinationRejectedError(message)
