"""Shard leases in Redis (semantics: see esm.ownership.leases).

One hash per stream: field = shard id, value = the lease as JSON. Take, renew, release and
checkpoint are Lua scripts, so each compare-and-set on the token is atomic across every host
sharing the Redis. Lua numbers are doubles, so `expires_at` is kept as a string (exact) and
sequence numbers (over 64 bits) are compared as digit strings: longer is larger, then by text.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import orjson
import redis.asyncio
import redis.exceptions
from redis.commands.core import AsyncScript

from esm.ownership.leases import SHARD_END, Lease, normalize_sequence
from esm.stores.redis.connection import translate

# Helpers shared by the scripts; KEYS[1] is always the stream's hash, ARGV[1] the shard id.
_PRELUDE = """
local function load()
    local raw = redis.call('HGET', KEYS[1], ARGV[1])
    if not raw then return nil end
    return cjson.decode(raw)
end
local function held(lease, owner, token)
    return lease ~= nil and lease.owner == owner and lease.token == tonumber(token)
end
local function save(lease)
    local raw = cjson.encode(lease)
    redis.call('HSET', KEYS[1], ARGV[1], raw)
    return raw
end
"""

# ARGV: shard, expected token, owner, expires_at. Returns the new lease JSON or nil.
_TAKE = (
    _PRELUDE
    + """
local lease = load()
if lease == nil or lease.token ~= tonumber(ARGV[2]) then return false end
lease.token = lease.token + 1
lease.owner = ARGV[3]
lease.expires_at = ARGV[4]
return save(lease)
"""
)

# ARGV: shard, owner, token, expires_at.
_RENEW = (
    _PRELUDE
    + """
local lease = load()
if not held(lease, ARGV[2], ARGV[3]) then return 0 end
lease.expires_at = ARGV[4]
save(lease)
return 1
"""
)

# ARGV: shard, owner, token.
_RELEASE = (
    _PRELUDE
    + """
local lease = load()
if not held(lease, ARGV[2], ARGV[3]) then return 0 end
lease.token = lease.token + 1
lease.owner = cjson.null
lease.expires_at = '0'
save(lease)
return 1
"""
)

# ARGV: shard, owner, token, now, normalized sequence, the SHARD_END marker.
_CHECKPOINT = (
    _PRELUDE
    + """
local lease = load()
if not held(lease, ARGV[2], ARGV[3]) or tonumber(lease.expires_at) <= tonumber(ARGV[4]) then
    return 0
end
local current, new, shard_end = lease.checkpoint, ARGV[5], ARGV[6]
if current ~= nil and current ~= cjson.null and new ~= shard_end then
    if current == shard_end then return 0 end
    if #new < #current or (#new == #current and new < current) then return 0 end
end
lease.checkpoint = new
save(lease)
return 1
"""
)


# ARGV: shard, the SHARD_END marker.
_DELETE_FINISHED = (
    _PRELUDE
    + """
local lease = load()
if lease == nil or lease.checkpoint ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""
)


class RedisLeaseStore:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, display_url: str) -> None:
        self._client = client
        self._prefix = prefix
        self._display_url = display_url
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._checkpoint = client.register_script(_CHECKPOINT)
        self._delete_finished = client.register_script(_DELETE_FINISHED)

    def key(self, stream: str) -> str:
        return f"{self._prefix}leases:{stream}"

    async def ensure(self, stream: str, shard_id: str, parents: Sequence[str]) -> Lease:
        initial = orjson.dumps(
            {"owner": None, "expires_at": "0", "token": 0, "checkpoint": None, "parents": list(parents)}
        )
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(self.key(stream), shard_id, initial)
                pipe.hget(self.key(stream), shard_id)
                _, raw = await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, f"create the lease of {stream}/{shard_id}") from exc
        return _lease(stream, shard_id, raw)

    async def list(self, stream: str) -> builtins.list[Lease]:
        try:
            raw = await self._client.hgetall(self.key(stream))
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, f"list the leases of {stream}") from exc
        leases = [_lease(stream, _text(shard), value) for shard, value in raw.items()]
        return sorted(leases, key=lambda lease: lease.shard_id)

    async def take(
        self, stream: str, shard_id: str, owner: str, expected_token: int, ttl: float, now: float
    ) -> Lease | None:
        action = f"take the lease of {stream}/{shard_id}"
        raw = await self._run(self._take, stream, action, shard_id, expected_token, owner, repr(now + ttl))
        return _lease(stream, shard_id, raw) if isinstance(raw, bytes | str) else None

    async def renew(self, stream: str, shard_id: str, owner: str, token: int, ttl: float, now: float) -> bool:
        action = f"renew the lease of {stream}/{shard_id}"
        return await self._run(self._renew, stream, action, shard_id, owner, token, repr(now + ttl)) == 1

    async def release(self, stream: str, shard_id: str, owner: str, token: int) -> bool:
        action = f"release the lease of {stream}/{shard_id}"
        return await self._run(self._release, stream, action, shard_id, owner, token) == 1

    async def checkpoint(
        self, stream: str, shard_id: str, owner: str, token: int, sequence: str, now: float
    ) -> bool:
        normalized = normalize_sequence(stream, shard_id, sequence)
        action = f"checkpoint {stream}/{shard_id}"
        args = (shard_id, owner, token, repr(now), normalized, SHARD_END)
        return await self._run(self._checkpoint, stream, action, *args) == 1

    async def delete_finished(self, stream: str, shard_id: str) -> bool:
        action = f"delete the finished lease {stream}/{shard_id}"
        return await self._run(self._delete_finished, stream, action, shard_id, SHARD_END) == 1

    async def _run(self, script: AsyncScript, stream: str, action: str, *args: str | int) -> object:
        """Run `script` on the stream's hash; Redis failures become store errors naming `action`."""
        try:
            result: object = await script(keys=[self.key(stream)], args=list(args))
            return result
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self._display_url, action) from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _lease(stream: str, shard_id: str, raw: bytes | str) -> Lease:
    data = orjson.loads(raw)
    return Lease(
        stream=stream,
        shard_id=shard_id,
        owner=data.get("owner"),
        expires_at=float(data["expires_at"]),
        token=int(data["token"]),
        checkpoint=data.get("checkpoint"),
        # Lua's cjson writes an empty list back as `{}`; either way it means no parents.
        parent_shard_ids=tuple(data.get("parents") or ()),
    )
