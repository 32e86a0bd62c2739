from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from esm.netutil import free_port
from esm.stores import StoreConfigError, StoreUnavailableError, open_store
from esm.stores.redis import RedisPermitStore
from esm.stores.sqlite import SqlitePermitStore
from esm.stores.url import RedisLocation, parse_store_url


async def test_sqlite_store_is_local_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "state.db"

    store = open_store(f"sqlite:///{path}")
    try:
        assert store.is_local is True
        assert isinstance(store.permits, SqlitePermitStore)
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "permits" in tables
    finally:
        await store.close()


async def test_sqlite_store_can_be_opened_again_with_its_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = open_store(url)
    await first.permits.try_acquire("fn", 5, "h/1", 10.0)
    await first.close()

    second = open_store(url)
    try:
        assert await second.permits.in_use("fn") == 1
    finally:
        await second.close()


def test_sqlite_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match=r"cannot open SQLite database .*missing"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'state.db'}")


async def test_redis_store_spans_hosts(redis_url: str) -> None:
    location = parse_store_url(redis_url)
    assert isinstance(location, RedisLocation)
    store = open_store(redis_url)
    try:
        assert store.is_local is False
        assert isinstance(store.permits, RedisPermitStore)
        assert store.permits.key("fn") == f"{location.prefix}permits:fn"
    finally:
        await store.close()


def test_unreachable_redis_fails_at_start_up() -> None:
    port = free_port()  # nothing listens there

    with pytest.raises(StoreUnavailableError, match=f"cannot reach Redis at 'redis://127.0.0.1:{port}/0'"):
        open_store(f"redis://127.0.0.1:{port}/0")


def test_redis_database_out_of_range_is_a_config_error(redis_url: str) -> None:
    location = parse_store_url(redis_url)
    assert isinstance(location, RedisLocation)
    with pytest.raises(StoreConfigError, match="rejected the connection"):
        open_store(location.client_url.rsplit("/", 1)[0] + "/100000")


def test_unsupported_scheme() -> None:
    with pytest.raises(StoreConfigError, match="unsupported URL scheme 'postgres'"):
        open_store("postgres://db/esm")
