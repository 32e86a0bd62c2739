"""Concurrency permits in a SQLite `permits` table (algorithm: see esm.stores.permits)."""

from __future__ import annotations

import sqlite3
import uuid

from esm.stores.sqlite.database import SqliteDatabase, immediate

PERMITS_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS permits (
        function   TEXT NOT NULL,
        permit_id  TEXT NOT NULL,
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (function, permit_id)
    ) WITHOUT ROWID
    """,
)


class SqlitePermitStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def try_acquire(
        self, function: str, limit: int, holder: str, ttl_seconds: float, now: float
    ) -> str | None:
        permit_id = uuid.uuid4().hex

        def acquire(connection: sqlite3.Connection) -> str | None:
            connection.execute("DELETE FROM permits WHERE function = ? AND expires_at <= ?", (function, now))
            (live,) = connection.execute(
                "SELECT COUNT(*) FROM permits WHERE function = ?", (function,)
            ).fetchone()
            if live >= limit:
                return None
            connection.execute(
                "INSERT INTO permits (function, permit_id, holder, expires_at) VALUES (?, ?, ?, ?)",
                (function, permit_id, holder, now + ttl_seconds),
            )
            return permit_id

        return await self._database.run(lambda connection: immediate(connection, acquire))

    async def renew(self, function: str, permit_id: str, ttl_seconds: float, now: float) -> bool:
        def renew(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE permits SET expires_at = ? WHERE function = ? AND permit_id = ? AND expires_at > ?",
                (now + ttl_seconds, function, permit_id, now),
            )
            return cursor.rowcount == 1

        return await self._database.run(renew)

    async def release(self, function: str, permit_id: str) -> None:
        def release(connection: sqlite3.Connection) -> None:
            connection.execute(
                "DELETE FROM permits WHERE function = ? AND permit_id = ?", (function, permit_id)
            )

        await self._database.run(release)

    async def in_use(self, function: str, now: float) -> int:
        def count(connection: sqlite3.Connection) -> int:
            (live,) = connection.execute(
                "SELECT COUNT(*) FROM permits WHERE function = ? AND expires_at > ?", (function, now)
            ).fetchone()
            return int(live)

        return await self._database.run(count)
