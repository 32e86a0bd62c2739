"""Concurrency permits in Redis: Lua scripts mirroring esm.stores.permit_rules on Redis's clock.

Per function, a sorted set of live permits (member = token, score = expiry in ms of Redis
`TIME`) and a sorted set of given-up tokens (score = when to forget them). Each script runs
atomically on the server, so hosts sharing the Redis agree, and reads the time there, so their
own clocks do not matter. Both sets get a Redis TTL a little beyond their latest entry, so the
keys of a function that is no longer used disappear by themselves.
"""

from __future__ import annotations

import math

import redis.asyncio
import redis.exceptions

from esm.stores.permit_rules import GIVEN_UP_MEMORY_SECONDS
from esm.stores.redis.connection import translate

# Redis's clock in ms; with effect replication (Redis >= 5) scripts may read it.
_NOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function keep(key, ttl_ms)
    if redis.call('PTTL', key) < ttl_ms then
        redis.call('PEXPIRE', key, ttl_ms)
    end
end
"""

# KEYS: live set, given-up set. ARGV: token, limit, lease ms, key ttl ms. Returns 1 if held.
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
    return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
keep(KEYS[1], tonumber(ARGV[4]))
return 1
"""
)

# KEYS: live set. ARGV: token, lease ms, key ttl ms. Returns 1 if renewed.
_RENEW = (
    _NOW
    + """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now then
    return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
keep(KEYS[1], tonumber(ARGV[3]))
return 1
"""
)

# KEYS: live set, given-up set. ARGV: token, memory ms.
_RELEASE = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
keep(KEYS[2], tonumber(ARGV[2]) + 1000)
return 1
"""
)

# KEYS: live set.
_IN_USE = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""
)

# How long an idle function's live set outlives its last permit's lease.
_KEY_GRACE_MS = 60_000
_MEMORY_MS = math.ceil(GIVEN_UP_MEMORY_SECONDS * 1000)


class RedisPermitStore:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, display_url: str) -> None:
        self._client = client
        self._prefix = prefix
        self._display_url = display_url
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._in_use = client.register_script(_IN_USE)

    def key(self, function: str) -> str:
        return f"{self._prefix}permits:{function}"

    def given_up_key(self, function: str) -> str:
        return f"{self._prefix}permits-given-up:{function}"

    async def try_acquire(self, function: str, limit: int, token: str, lease_seconds: float) -> bool:
        lease_ms = _ms(lease_seconds)
        keys = [self.key(function), self.given_up_key(function)]
        args: list[str | int] = [token, limit, lease_ms, lease_ms + _KEY_GRACE_MS]
        try:
            taken = await self._acquire(keys=keys, args=args)
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, f"acquire a permit for function {function!r}") from exc
        return bool(taken == 1)

    async def renew(self, function: str, token: str, lease_seconds: float) -> bool:
        lease_ms = _ms(lease_seconds)
        try:
            renewed = await self._renew(
                keys=[self.key(function)], args=[token, lease_ms, lease_ms + _KEY_GRACE_MS]
            )
        except redis.exceptions.RedisError as exc:
            action = f"renew permit {token!r} of function {function!r}"
            raise translate(exc, self._display_url, action) from exc
        return bool(renewed == 1)

    async def release(self, function: str, token: str) -> None:
        keys = [self.key(function), self.given_up_key(function)]
        try:
            await self._release(keys=keys, args=[token, _MEMORY_MS])
        except redis.exceptions.RedisError as exc:
            action = f"release permit {token!r} of function {function!r}"
            raise translate(exc, self._display_url, action) from exc

    async def in_use(self, function: str) -> int:
        try:
            live = await self._in_use(keys=[self.key(function)])
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, f"count permits of function {function!r}") from exc
        return int(live)


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
