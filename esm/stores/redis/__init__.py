"""The Redis store backend: state shared by the processes of many hosts."""

from __future__ import annotations

from esm.stores.redis.connection import connect
from esm.stores.redis.leases import RedisLeaseStore
from esm.stores.redis.mappings import RedisMappingRegistry
from esm.stores.redis.permits import RedisPermitStore
from esm.stores.redis.status import RedisShardStatusStore
from esm.stores.store import Store
from esm.stores.url import RedisLocation


def open_redis_store(location: RedisLocation) -> Store:
    client = connect(location)
    return Store(
        url=location.display_url,
        is_local=False,
        permits=RedisPermitStore(client, location.prefix, location.display_url),
        status=RedisShardStatusStore(client, location.prefix, location.display_url),
        leases=RedisLeaseStore(client, location.prefix, location.display_url),
        mappings=RedisMappingRegistry(client, location.prefix, location.display_url),
        _close=client.aclose,
    )


__all__ = ["RedisPermitStore", "open_redis_store"]
