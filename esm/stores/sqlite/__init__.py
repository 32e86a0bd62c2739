"""The SQLite store backend: one file shared by the processes of one host."""

from __future__ import annotations

from esm.stores.sqlite.database import SqliteDatabase
from esm.stores.sqlite.leases import LEASES_SCHEMA, SqliteLeaseStore
from esm.stores.sqlite.mappings import MAPPINGS_SCHEMA, SqliteMappingRegistry
from esm.stores.sqlite.permits import PERMITS_SCHEMA, SqlitePermitStore
from esm.stores.sqlite.status import STATUS_SCHEMA, SqliteShardStatusStore
from esm.stores.store import Store
from esm.stores.url import SqliteLocation

# Every role's tables; each statement is idempotent so any process may open the file first.
SCHEMA = (*PERMITS_SCHEMA, *STATUS_SCHEMA, *LEASES_SCHEMA, *MAPPINGS_SCHEMA)


def open_sqlite_store(location: SqliteLocation, display_url: str) -> Store:
    database = SqliteDatabase.open(location.path, SCHEMA)
    return Store(
        url=display_url,
        is_local=True,
        permits=SqlitePermitStore(database),
        status=SqliteShardStatusStore(database),
        leases=SqliteLeaseStore(database),
        mappings=SqliteMappingRegistry(database),
        _close=database.close,
    )


__all__ = ["SqliteDatabase", "SqlitePermitStore", "open_sqlite_store"]
