"""Concurrency permits in SQLite (decisions: esm.stores.permit_rules), each call one transaction.

Expiry uses this host's clock: a SQLite file is shared by the processes of one host only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from esm.stores.permit_rules import GIVEN_UP_MEMORY_SECONDS, decide_acquire, decide_renew
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
    # Tokens released lately: an acquire arriving with one of them is refused.
    """
    CREATE TABLE IF NOT EXISTS permits_given_up (
        function  TEXT NOT NULL,
        permit_id TEXT NOT NULL,
        forget_at REAL NOT NULL,
        PRIMARY KEY (function, permit_id)
    ) WITHOUT ROWID
    """,
)


class SqlitePermitStore:
    def __init__(self, database: SqliteDatabase, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock

    async def try_acquire(self, function: str, limit: int, token: str, lease_seconds: float) -> bool:
        def acquire(connection: sqlite3.Connection) -> bool:
            now = self._clock()
            connection.execute("DELETE FROM permits WHERE function = ? AND expires_at <= ?", (function, now))
            connection.execute(
                "DELETE FROM permits_given_up WHERE function = ? AND forget_at <= ?", (function, now)
            )
            expiries = dict(
                connection.execute(
                    "SELECT permit_id, expires_at FROM permits WHERE function = ?", (function,)
                )
            )
            given_up = connection.execute(
                "SELECT 1 FROM permits_given_up WHERE function = ? AND permit_id = ?", (function, token)
            ).fetchone()
            decision = decide_acquire(expiries, {token} if given_up else set(), token, limit, now)
            if decision.holds:
                connection.execute(
                    "INSERT OR REPLACE INTO permits (function, permit_id, holder, expires_at) "
                    "VALUES (?, ?, ?, ?)",
                    (function, token, _holder(token), now + lease_seconds),
                )
            return decision.holds

        return await self._database.run(lambda connection: immediate(connection, acquire))

    async def renew(self, function: str, token: str, lease_seconds: float) -> bool:
        def renew(connection: sqlite3.Connection) -> bool:
            now = self._clock()
            row = connection.execute(
                "SELECT expires_at FROM permits WHERE function = ? AND permit_id = ?", (function, token)
            ).fetchone()
            if not decide_renew({token: row[0]} if row else {}, token, now):
                return False
            connection.execute(
                "UPDATE permits SET expires_at = ? WHERE function = ? AND permit_id = ?",
                (now + lease_seconds, function, token),
            )
            return True

        return await self._database.run(lambda connection: immediate(connection, renew))

    async def release(self, function: str, token: str) -> None:
        def release(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM permits WHERE function = ? AND permit_id = ?", (function, token))
            connection.execute(
                "INSERT OR REPLACE INTO permits_given_up (function, permit_id, forget_at) VALUES (?, ?, ?)",
                (function, token, self._clock() + GIVEN_UP_MEMORY_SECONDS),
            )

        await self._database.run(lambda connection: immediate(connection, release))

    async def in_use(self, function: str) -> int:
        def count(connection: sqlite3.Connection) -> int:
            (live,) = connection.execute(
                "SELECT COUNT(*) FROM permits WHERE function = ? AND expires_at > ?",
                (function, self._clock()),
            ).fetchone()
            return int(live)

        return await self._database.run(count)


def _holder(token: str) -> str:
    """Tokens are `holder/random` (see esm.dispatch.limiter): the holder shows who holds what."""
    return token.rpartition("/")[0] or token
