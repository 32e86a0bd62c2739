from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from esm.stores import StoreUnavailableError
from esm.stores.sqlite.database import SqliteDatabase, immediate

SCHEMA = ("CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY)",)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    opened = SqliteDatabase.open(str(tmp_path / "db.sqlite"), SCHEMA, busy_timeout_seconds=0.05)
    yield opened
    await opened.close()


def names(connection: sqlite3.Connection) -> list[str]:
    return [row[0] for row in connection.execute("SELECT name FROM items ORDER BY name")]


async def test_immediate_commits_when_the_work_returns(database: SqliteDatabase) -> None:
    await database.run(lambda conn: immediate(conn, lambda c: c.execute("INSERT INTO items VALUES ('a')")))

    assert await database.run(names) == ["a"]


async def test_immediate_rolls_back_when_the_work_raises(database: SqliteDatabase) -> None:
    def insert_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO items VALUES ('b')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await database.run(lambda conn: immediate(conn, insert_then_fail))

    assert await database.run(names) == []
    assert await database.run(lambda conn: conn.in_transaction) is False


async def test_a_lock_held_past_the_busy_timeout_is_retryable(
    database: SqliteDatabase, tmp_path: Path
) -> None:
    # Another process holds the write lock longer than busy_timeout (50 ms here).
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="database is locked") as raised:
            await database.run(
                lambda conn: immediate(conn, lambda c: c.execute("INSERT INTO items VALUES ('c')"))
            )
        assert raised.value.retryable is True
    finally:
        other.execute("ROLLBACK")
        other.close()
