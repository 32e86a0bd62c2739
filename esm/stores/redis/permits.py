"""Concurrency permits in Redis: one sorted set per function, member = permit, score = expiry.

Acquire and renew are Lua scripts, so the steps of esm.stores.permits' algorithm are atomic
across every host sharing the Redis. Each set also gets a Redis TTL a little beyond its latest
permit, so the set of a function that is no longer used disappears by itself.
"""

from __future__ import annotations

import math
import uuid

import redis.asyncio
import redis.exceptions

from esm.stores.redis.connection import translate

# KEYS[1] the function's set; ARGV: now, limit, expires_at, permit id, key ttl (ms).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
"""

# KEYS[1] the function's set; ARGV: now, expires_at, permit id, key ttl (ms).
_RENEW = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not score or tonumber(score) <= tonumber(ARGV[1]) then
    return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
"""

# How long an idle function's set outlives its last permit's ttl.
_KEY_GRACE_MS = 60_000


class RedisPermitStore:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, display_url: str) -> None:
        self._client = client
        self._prefix = prefix
        self._display_url = display_url
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    def key(self, function: str) -> str:
        return f"{self._prefix}permits:{function}"

    async def try_acquire(
        self, function: str, limit: int, holder: str, ttl_seconds: float, now: float
    ) -> str | None:
        # The holder is part of the id, so `ZRANGE` shows who holds each permit.
        permit_id = f"{holder}/{uuid.uuid4().hex}"
        expires_at = repr(now + ttl_seconds)
        args: list[str | int] = [repr(now), limit, expires_at, permit_id, _key_ttl_ms(ttl_seconds)]
        try:
            taken = await self._acquire(keys=[self.key(function)], args=args)
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, f"acquire a permit for function {function!r}") from exc
        return permit_id if taken == 1 else None

    async def renew(self, function: str, permit_id: str, ttl_seconds: float, now: float) -> bool:
        args: list[str | int] = [repr(now), repr(now + ttl_seconds), permit_id, _key_ttl_ms(ttl_seconds)]
        try:
            renewed = await self._renew(keys=[self.key(function)], args=args)
        except redis.exceptions.RedisError as exc:
            action = f"renew permit {permit_id!r} of function {function!r}"
            raise translate(exc, self._display_url, action) from exc
        return bool(renewed == 1)

    async def release(self, function: str, permit_id: str) -> None:
        try:
            await self._client.zrem(self.key(function), permit_id)
        except redis.exceptions.RedisError as exc:
            action = f"release permit {permit_id!r} of function {function!r}"
            raise translate(exc, self._display_url, action) from exc

    async def in_use(self, function: str, now: float) -> int:
        try:
            live = await self._client.zcount(self.key(function), f"({now!r}", "+inf")
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, f"count permits of function {function!r}") from exc
        return int(live)


def _key_ttl_ms(ttl_seconds: float) -> int:
    return math.ceil(ttl_seconds * 1000) + _KEY_GRACE_MS
