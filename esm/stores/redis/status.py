"""Shard status reports in Redis: one hash per mapping, field = shard, value = the report with its
expiry (Redis 7.0 has no per-field TTL, so expired fields are skipped on read and pruned on
publish; the key itself expires when no owner refreshes it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio
import redis.exceptions

from esm.stores.redis.connection import translate


class RedisShardStatusStore:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, display_url: str) -> None:
        self._client = client
        self._prefix = prefix
        self._display_url = display_url

    def key(self, mapping: str) -> str:
        return f"{self._prefix}status:{mapping}"

    async def publish(
        self, mapping: str, reports: Mapping[str, Mapping[str, Any]], ttl_seconds: float, now: float
    ) -> None:
        if not reports:
            return
        fields = {
            shard: orjson.dumps({"expires_at": now + ttl_seconds, "report": report})
            for shard, report in reports.items()
        }
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(self.key(mapping), mapping=fields)  # type: ignore[arg-type]
                pipe.pexpire(self.key(mapping), math.ceil(ttl_seconds * 1000) + 1000)
                await pipe.execute()
        except redis.exceptions.RedisError as err:
            raise translate(err, self._display_url, "publish shard status") from err

    async def read(self, mapping: str, now: float) -> dict[str, dict[str, Any]]:
        try:
            raw = await self._client.hgetall(self.key(mapping))
        except redis.exceptions.RedisError as err:
            raise translate(err, self._display_url, "read shard status") from err
        reports: dict[str, dict[str, Any]] = {}
        for shard, value in raw.items():
            entry = orjson.loads(value)
            if entry["expires_at"] > now:
                name = shard.decode() if isinstance(shard, bytes) else str(shard)
                reports[name] = entry["report"]
        return reports
