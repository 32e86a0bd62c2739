"""A `store` on each backend: a SQLite file in tmp_path and the local Redis under a unique prefix.

The URLs come from the suite-wide fixture `store_url` (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from esm.stores import Store, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    yield opened
    await opened.close()
