"""Connecting to Redis: a reachability check at start-up, then the asyncio client the roles share
(esm.redis_client's, which keeps cancellations)."""

from __future__ import annotations

import redis
import redis.asyncio
import redis.exceptions

import esm.redis_client
from esm.stores.errors import StoreConfigError, StoreError, StoreUnavailableError
from esm.stores.url import RedisLocation

CONNECT_TIMEOUT_SECONDS = 5.0
# A command that takes this long means Redis is stuck; fail it rather than hang a poller.
COMMAND_TIMEOUT_SECONDS = 10.0


def connect(location: RedisLocation) -> redis.asyncio.Redis:
    """Check that Redis answers, then return an asyncio client (it connects on first use).

    The check uses a short-lived synchronous client so that opening a store needs no event loop
    and an unreachable or misconfigured Redis stops start-up with a clear message.
    """
    where = f"Redis at {location.display_url!r}"
    probe = redis.Redis.from_url(
        location.client_url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        probe.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise StoreConfigError(f"Store: {where} refused the credentials: {exc}") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise StoreUnavailableError(f"Store: cannot reach {where}: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        # e.g. a database number beyond the server's `databases` setting.
        raise StoreConfigError(f"Store: {where} rejected the connection: {exc}") from exc
    finally:
        probe.close()
    return esm.redis_client.Redis.from_url(
        location.client_url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
    )


def translate(exc: redis.exceptions.RedisError, display_url: str, action: str) -> StoreError:
    """The store error for a Redis failure during `action`; connection trouble is retryable."""
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return StoreUnavailableError(f"Store: Redis at {display_url!r} failed to {action}: {exc}")
    return StoreError(f"Store: Redis at {display_url!r} failed to {action}: {exc}")
