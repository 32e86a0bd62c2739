"""`open_store`: from a store URL to a ready `Store` with every role."""

from __future__ import annotations

from esm.stores.redis import open_redis_store
from esm.stores.sqlite import open_sqlite_store
from esm.stores.store import Store
from esm.stores.url import DEFAULT_STORE_URL, SqliteLocation, parse_store_url


def open_store(url: str = DEFAULT_STORE_URL) -> Store:
    """Open the store named by `url` (sqlite:///path or redis://host:port/db).

    Raises StoreConfigError for a URL esm cannot use and StoreUnavailableError when Redis
    cannot be reached, so a bad store stops start-up instead of the first invocation.
    Call from the process that will use the store: connections do not survive a fork.
    """
    location = parse_store_url(url)
    if isinstance(location, SqliteLocation):
        return open_sqlite_store(location, display_url=url)
    return open_redis_store(location)
