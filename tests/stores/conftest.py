"""A `store` on each backend: a SQLite file in tmp_path and the local Redis under a unique prefix.

The URLs come from the suite-wide fixtures `sqlite_store_url` and `redis_url` (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from esm.stores import Store, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_store_url" if request.param == "sqlite" else "redis_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    yield opened
    await opened.close()
