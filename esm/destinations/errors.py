"""Errors raised by destinations; whether the engine may retry is a property of the type.

The engine keeps retrying a failed batch's record while the error is retryable (a destination
that is down comes back); a permanent error needs an operator (a bad URI, a refused write), and
the record must still not be dropped: the engine stops rather than skip it.
"""

from __future__ import annotations

from typing import ClassVar


class DestinationError(Exception):
    """Base of every destination error."""

    retryable: ClassVar[bool] = False


class DestinationConfigError(DestinationError):
    """The destination URI is malformed or names a kind esm does not support; fix the mapping."""


class DestinationRejectedError(DestinationError):
    """The destination answered but refused the record (permissions, size, wrong key type)."""


class DestinationUnavailableError(DestinationError):
    """The destination could not be reached or had no room for now (down, timed out, disk full)."""

    retryable: ClassVar[bool] = True
