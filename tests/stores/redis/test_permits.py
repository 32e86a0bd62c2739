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


async def test_permits_are_a_sorted_set_scored_by_expiry_on_redis_s_clock(
    store: Store, redis_url: str
) -> None:
    assert await store.permits.try_acquire("fn", 2, "host-a:42/t1", 30.0) is True

    location = parse_store_url(redis_url)
    assert isinstance(location, RedisLocation)
    client = redis.Redis.from_url(location.client_url)
    try:
        redis_time = client.time()
        redis_now_ms = int(redis_time[0]) * 1000 + int(redis_time[1]) // 1000
        key = f"{location.prefix}permits:fn"
        permits = list(client.zrange(key, 0, -1, withscores=True))
        assert [member for member, _ in permits] == [b"host-a:42/t1"]
        assert redis_now_ms + 29_000 < float(permits[0][1]) <= redis_now_ms + 30_000
        # The set outlives its permits by a grace period, then goes away when nobody uses it.
        assert 30_000 < client.pttl(key) <= 90_000
        # A released token is remembered for a while (to refuse its late acquire), then forgotten.
        await store.permits.release("fn", "host-a:42/t1")
        assert 0 < client.pttl(f"{location.prefix}permits-given-up:fn") <= 130_000
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
            await broken.try_acquire("fn", 1, "h/1", 10.0)
        assert raised.value.retryable is True
    finally:
        await client.aclose()
