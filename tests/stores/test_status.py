"""Shard status reports against both real backends: publish, read, expiry, replacement."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from esm.stores import Store, open_store


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, sqlite_store_url: str, redis_url: str
) -> AsyncIterator[Store]:
    opened = open_store(sqlite_store_url if request.param == "sqlite" else redis_url)
    yield opened
    await opened.close()


async def test_reports_are_read_back_until_they_expire(store: Store) -> None:
    await store.status.publish(
        "m1", {"0": {"owner": "a:1", "retries": 0}, "1": {"owner": "a:1"}}, 5.0, now=100.0
    )
    await store.status.publish("m2", {"0": {"owner": "b:2"}}, 5.0, now=100.0)
    assert await store.status.read("m1", now=101.0) == {
        "0": {"owner": "a:1", "retries": 0},
        "1": {"owner": "a:1"},
    }
    assert await store.status.read("m2", now=101.0) == {"0": {"owner": "b:2"}}
    assert await store.status.read("m1", now=105.5) == {}  # its owner stopped refreshing it


async def test_a_newer_report_replaces_the_older(store: Store) -> None:
    await store.status.publish("m", {"3": {"owner": "a:1", "retries": 1}}, 5.0, now=10.0)
    await store.status.publish("m", {"3": {"owner": "b:2", "retries": 0}}, 5.0, now=12.0)
    assert await store.status.read("m", now=16.0) == {"3": {"owner": "b:2", "retries": 0}}
