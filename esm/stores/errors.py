"""Errors raised by the stores; whether a caller may retry is a property of the type."""

from __future__ import annotations

from typing import ClassVar


class StoreError(Exception):
    """Base of every store error."""

    retryable: ClassVar[bool] = False


class StoreConfigError(StoreError):
    """The store URL is malformed or names something esm cannot use; fix the configuration."""


class StoreUnavailableError(StoreError):
    """The store could not be reached or was busy (Redis down, SQLite locked past its timeout)."""

    retryable: ClassVar[bool] = True
