"""Control-API mappings in SQLite tables (see esm.stores.mappings)."""

from __future__ import annotations

import sqlite3

import orjson

from esm.stores.mappings import StoredMapping
from esm.stores.sqlite.database import SqliteDatabase, immediate

MAPPINGS_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS api_mappings (
        uuid          TEXT PRIMARY KEY,
        document      BLOB NOT NULL,
        state         TEXT NOT NULL,
        state_reason  TEXT NOT NULL,
        last_modified REAL NOT NULL,
        revision      INTEGER NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS api_mappings_generation (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
    )
    """,
    "INSERT OR IGNORE INTO api_mappings_generation (id, value) VALUES (1, 0)",
)

_COLUMNS = "uuid, document, state, state_reason, last_modified, revision"


def _row(row: tuple[str, bytes, str, str, float, int]) -> StoredMapping:
    uuid, document, state, reason, modified, revision = row
    return StoredMapping(uuid, orjson.loads(document), state, reason, modified, revision)


def _bump(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE api_mappings_generation SET value = value + 1 WHERE id = 1")


class SqliteMappingRegistry:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def create(self, mapping: StoredMapping) -> StoredMapping | None:
        stored = StoredMapping(
            mapping.uuid, mapping.document, mapping.state, mapping.state_reason, mapping.last_modified, 1
        )

        def insert(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                f"INSERT OR IGNORE INTO api_mappings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    stored.uuid,
                    orjson.dumps(stored.document),
                    stored.state,
                    stored.state_reason,
                    stored.last_modified,
                    1,
                ),
            )
            if cursor.rowcount != 1:
                return False
            _bump(connection)
            return True

        return stored if await self._database.run(lambda c: immediate(c, insert)) else None

    async def get(self, uuid: str) -> StoredMapping | None:
        def select(connection: sqlite3.Connection) -> tuple[str, bytes, str, str, float, int] | None:
            row: tuple[str, bytes, str, str, float, int] | None = connection.execute(
                f"SELECT {_COLUMNS} FROM api_mappings WHERE uuid = ?", (uuid,)
            ).fetchone()
            return row

        row = await self._database.run(select)
        return _row(row) if row is not None else None

    async def list(self) -> list[StoredMapping]:
        def select(connection: sqlite3.Connection) -> list[tuple[str, bytes, str, str, float, int]]:
            return connection.execute(f"SELECT {_COLUMNS} FROM api_mappings ORDER BY uuid").fetchall()

        return [_row(row) for row in await self._database.run(select)]

    async def replace(self, mapping: StoredMapping) -> StoredMapping | None:
        written = StoredMapping(
            mapping.uuid,
            mapping.document,
            mapping.state,
            mapping.state_reason,
            mapping.last_modified,
            mapping.revision + 1,
        )

        def update(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE api_mappings SET document = ?, state = ?, state_reason = ?, last_modified = ?,"
                " revision = ? WHERE uuid = ? AND revision = ?",
                (
                    orjson.dumps(written.document),
                    written.state,
                    written.state_reason,
                    written.last_modified,
                    written.revision,
                    mapping.uuid,
                    mapping.revision,
                ),
            )
            if cursor.rowcount != 1:
                return False
            _bump(connection)
            return True

        return written if await self._database.run(lambda c: immediate(c, update)) else None

    async def delete(self, uuid: str, revision: int) -> bool:
        def remove(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "DELETE FROM api_mappings WHERE uuid = ? AND revision = ?", (uuid, revision)
            )
            if cursor.rowcount != 1:
                return False
            _bump(connection)
            return True

        return bool(await self._database.run(lambda c: immediate(c, remove)))

    async def generation(self) -> int:
        def select(connection: sqlite3.Connection) -> int:
            return int(
                connection.execute("SELECT value FROM api_mappings_generation WHERE id = 1").fetchone()[0]
            )

        return await self._database.run(select)
