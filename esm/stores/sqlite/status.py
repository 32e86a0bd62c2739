"""Shard status reports in a SQLite `shard_status` table (see esm.stores.status)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson

from esm.stores.sqlite.database import SqliteDatabase, immediate

STATUS_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS shard_status (
        mapping    TEXT NOT NULL,
        shard      TEXT NOT NULL,
        report     BLOB NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (mapping, shard)
    ) WITHOUT ROWID
    """,
)


class SqliteShardStatusStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def publish(
        self, mapping: str, reports: Mapping[str, Mapping[str, Any]], ttl_seconds: float, now: float
    ) -> None:
        rows = [
            (mapping, shard, orjson.dumps(report), now + ttl_seconds) for shard, report in reports.items()
        ]

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "DELETE FROM shard_status WHERE mapping = ? AND expires_at <= ?", (mapping, now)
            )
            connection.executemany(
                "INSERT OR REPLACE INTO shard_status (mapping, shard, report, expires_at)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )

        await self._database.run(lambda connection: immediate(connection, write))

    async def read(self, mapping: str, now: float) -> dict[str, dict[str, Any]]:
        def select(connection: sqlite3.Connection) -> list[tuple[str, bytes]]:
            return connection.execute(
                "SELECT shard, report FROM shard_status WHERE mapping = ? AND expires_at > ?", (mapping, now)
            ).fetchall()

        return {shard: orjson.loads(report) for shard, report in await self._database.run(select)}
