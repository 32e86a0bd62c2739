"""Control-API mappings in Redis (see esm.stores.mappings): one hash, field = UUID, value = the
stored mapping as JSON; each compare-and-set is a Lua script, and every change bumps a counter."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio
import redis.exceptions
from redis.commands.core import AsyncScript

from esm.stores.mappings import StoredMapping
from esm.stores.redis.connection import translate

# KEYS: the hash, the generation counter. ARGV: uuid, JSON of the new entry (revision 1).
_CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
"""

# ARGV: uuid, expected revision, JSON of the new entry (at the next revision).
_REPLACE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw or cjson.decode(raw).revision ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
"""

# ARGV: uuid, expected revision.
_DELETE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw or cjson.decode(raw).revision ~= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return 1
"""


def _encode(mapping: StoredMapping, revision: int) -> bytes:
    return orjson.dumps(
        {
            "uuid": mapping.uuid,
            "document": mapping.document,
            "state": mapping.state,
            "state_reason": mapping.state_reason,
            # Lua's numbers are doubles: a string keeps the time exact.
            "last_modified": repr(mapping.last_modified),
            "revision": revision,
        }
    )


def _decode(raw: bytes | str) -> StoredMapping:
    entry: dict[str, Any] = orjson.loads(raw)
    return StoredMapping(
        entry["uuid"],
        entry["document"],
        entry["state"],
        entry["state_reason"],
        float(entry["last_modified"]),
        int(entry["revision"]),
    )


class RedisMappingRegistry:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, display_url: str) -> None:
        self._client = client
        self._hash = f"{prefix}api-mappings"
        self._generation = f"{prefix}api-mappings:generation"
        self._display_url = display_url
        self._create = client.register_script(_CREATE)
        self._replace = client.register_script(_REPLACE)
        self._delete = client.register_script(_DELETE)

    async def create(self, mapping: StoredMapping) -> StoredMapping | None:
        created = await self._run(self._create, "create a mapping", mapping.uuid, _encode(mapping, 1))
        return _decode(_encode(mapping, 1)) if created else None

    async def get(self, uuid: str) -> StoredMapping | None:
        try:
            raw = await self._client.hget(self._hash, uuid)
        except redis.exceptions.RedisError as err:
            raise translate(err, self._display_url, "read a mapping") from err
        return _decode(raw) if raw is not None else None

    async def list(self) -> list[StoredMapping]:
        try:
            raw = await self._client.hgetall(self._hash)
        except redis.exceptions.RedisError as err:
            raise translate(err, self._display_url, "list the mappings") from err
        return sorted((_decode(value) for value in raw.values()), key=lambda m: m.uuid)

    async def replace(self, mapping: StoredMapping) -> StoredMapping | None:
        written = _encode(mapping, mapping.revision + 1)
        replaced = await self._run(self._replace, "update a mapping", mapping.uuid, mapping.revision, written)
        return _decode(written) if replaced else None

    async def delete(self, uuid: str, revision: int) -> bool:
        return bool(await self._run(self._delete, "delete a mapping", uuid, revision))

    async def generation(self) -> int:
        try:
            value = await self._client.get(self._generation)
        except redis.exceptions.RedisError as err:
            raise translate(err, self._display_url, "read the mappings' generation") from err
        return int(value or 0)

    async def _run(self, script: AsyncScript, action: str, *args: str | int | bytes) -> int:
        try:
            return int(await script(keys=[self._hash, self._generation], args=list(args)))
        except redis.exceptions.RedisError as err:
            raise translate(err, self._display_url, action) from err
