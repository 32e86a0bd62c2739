"""Redis specifics: where permits live and that abandoned sets expire by themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from esm.netutil import free_port
from esm.stores import Store, StoreUnavailableError, open_store
from esm.stores.redis import RedisPermitStore
from esm.stores.url import RedisLocation, parse_store_url


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    opened = open_store(redis_url)
    yield opened
    await opened.close()


async def test_permits_are_a_sorted_set_scored_by_expiry(store: Store, redis_url: str) -> None:
    permit = await store.permits.try_acquire("fn", 2, "host-a:42", 30.0, 1000.0)
    assert permit is not None and permit.startswith("host-a:42/")

    location = parse_store_url(redis_url)
    assert isinstance(location, RedisLocation)
    client = redis.Redis.from_url(location.client_url)
    try:
        key = f"{location.prefix}permits:fn"
        assert client.zrange(key, 0, -1, withscores=True) == [(permit.encode(), 1030.0)]
        # The set outlives its permits by a grace period, then goes away when nobody uses it.
        assert 30_000 < client.pttl(key) <= 90_000
    finally:
        client.close()


async def test_connection_loss_is_retryable() -> None:
    # A client of a Redis that is gone (nothing listens on the port); no client-side retries.
    client = redis.asyncio.Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    broken = RedisPermitStore(client, "p:", "redis://127.0.0.1/0")
    try:
        with pytest.raises(
            StoreUnavailableError, match="failed to acquire a permit for function 'fn'"
        ) as raised:
            await broken.try_acquire("fn", 1, "h", 10.0, 0.0)
        assert raised.value.retryable is True
    finally:
        await client.aclose()
