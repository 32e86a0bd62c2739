"""Shared engine state behind one interface, in SQLite (one host) or Redis (many hosts)."""

from esm.stores.errors import StoreConfigError, StoreError, StoreUnavailableError
from esm.stores.opener import open_store
from esm.stores.permits import PermitStore
from esm.stores.store import Store
from esm.stores.url import DEFAULT_STORE_URL

__all__ = [
    "DEFAULT_STORE_URL",
    "PermitStore",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "open_store",
]
