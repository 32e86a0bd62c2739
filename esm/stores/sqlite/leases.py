"""Shard leases in a SQLite `leases` table (semantics: see esm.ownership.leases).

Every read-check-write runs in one BEGIN IMMEDIATE transaction, so processes sharing the file
see each compare-and-set as atomic. Checkpoints are compared in Python inside the transaction:
sequence numbers do not fit SQLite's 64-bit integers.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence

import orjson

from esm.ownership.leases import SHARD_END, Lease, is_forward, normalize_sequence
from esm.stores.sqlite.database import SqliteDatabase, immediate

LEASES_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS leases (
        stream     TEXT NOT NULL,
        shard_id   TEXT NOT NULL,
        owner      TEXT,
        expires_at REAL NOT NULL,
        token      INTEGER NOT NULL,
        checkpoint TEXT,
        parents    BLOB NOT NULL,
        PRIMARY KEY (stream, shard_id)
    ) WITHOUT ROWID
    """,
)

_COLUMNS = "stream, shard_id, owner, expires_at, token, checkpoint, parents"
_Row = tuple[str, str, str | None, float, int, str | None, bytes]


class SqliteLeaseStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def ensure(self, stream: str, shard_id: str, parents: Sequence[str]) -> Lease:
        def ensure(connection: sqlite3.Connection) -> Lease:
            connection.execute(
                f"INSERT OR IGNORE INTO leases ({_COLUMNS}) VALUES (?, ?, NULL, 0, 0, NULL, ?)",
                (stream, shard_id, orjson.dumps(list(parents))),
            )
            lease = _select(connection, stream, shard_id)
            assert lease is not None  # inserted just above if it was missing
            return lease

        return await self._database.run(lambda connection: immediate(connection, ensure))

    async def list(self, stream: str) -> builtins.list[Lease]:
        def select_all(connection: sqlite3.Connection) -> builtins.list[Lease]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM leases WHERE stream = ? ORDER BY shard_id", (stream,)
            ).fetchall()
            return [_lease(row) for row in rows]

        return await self._database.run(select_all)

    async def take(
        self, stream: str, shard_id: str, owner: str, expected_token: int, ttl: float, now: float
    ) -> Lease | None:
        def take(connection: sqlite3.Connection) -> Lease | None:
            cursor = connection.execute(
                "UPDATE leases SET owner = ?, expires_at = ?, token = token + 1"
                " WHERE stream = ? AND shard_id = ? AND token = ?",
                (owner, now + ttl, stream, shard_id, expected_token),
            )
            if cursor.rowcount != 1:
                return None
            return _select(connection, stream, shard_id)

        return await self._database.run(lambda connection: immediate(connection, take))

    async def renew(self, stream: str, shard_id: str, owner: str, token: int, ttl: float, now: float) -> bool:
        def renew(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE leases SET expires_at = ?"
                " WHERE stream = ? AND shard_id = ? AND owner = ? AND token = ?",
                (now + ttl, stream, shard_id, owner, token),
            )
            return cursor.rowcount == 1

        return await self._database.run(renew)

    async def release(self, stream: str, shard_id: str, owner: str, token: int) -> bool:
        def release(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE leases SET owner = NULL, expires_at = 0, token = token + 1"
                " WHERE stream = ? AND shard_id = ? AND owner = ? AND token = ?",
                (stream, shard_id, owner, token),
            )
            return cursor.rowcount == 1

        return await self._database.run(release)

    async def delete_finished(self, stream: str, shard_id: str) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "DELETE FROM leases WHERE stream = ? AND shard_id = ? AND checkpoint = ?",
                (stream, shard_id, SHARD_END),
            )
            return cursor.rowcount == 1

        return await self._database.run(delete)

    async def checkpoint(
        self, stream: str, shard_id: str, owner: str, token: int, sequence: str, now: float
    ) -> bool:
        normalized = normalize_sequence(stream, shard_id, sequence)

        def checkpoint(connection: sqlite3.Connection) -> bool:
            lease = _select(connection, stream, shard_id)
            if lease is None or lease.token != token or not lease.is_held_by(owner, now):
                return False
            if not is_forward(lease.checkpoint, normalized):
                return False
            connection.execute(
                "UPDATE leases SET checkpoint = ? WHERE stream = ? AND shard_id = ?",
                (normalized, stream, shard_id),
            )
            return True

        return await self._database.run(lambda connection: immediate(connection, checkpoint))


def _select(connection: sqlite3.Connection, stream: str, shard_id: str) -> Lease | None:
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM leases WHERE stream = ? AND shard_id = ?", (stream, shard_id)
    ).fetchone()
    return None if row is None else _lease(row)


def _lease(row: _Row) -> Lease:
    stream, shard_id, owner, expires_at, token, checkpoint, parents = row
    return Lease(
        stream=stream,
        shard_id=shard_id,
        owner=owner,
        expires_at=float(expires_at),
        token=int(token),
        checkpoint=checkpoint,
        parent_shard_ids=tuple(orjson.loads(parents)),
    )
