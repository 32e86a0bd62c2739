"""Retrying a start-up step that SQLite refused with "database is locked" before its busy timeout.

SQLite calls the busy handler (`busy_timeout`) for most lock waits, but not all: switching a fresh
file to WAL takes an exclusive lock while other processes may be doing the same, and SQLite
answers SQLITE_BUSY at once where waiting could deadlock. Any number of daemons, `esm status` and
`esm replay` processes may open one fresh store file at the same moment, so the open retries such
a refusal (jittered, growing pauses) until the busy timeout's deadline, and only then fails.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_PAUSE_SECONDS = 0.005
LONGEST_PAUSE_SECONDS = 0.1
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, extended codes included (SQLITE_BUSY_RECOVERY, ...)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # no code on the error: judge by SQLite's own message
        return "locked" in str(error) or "busy" in str(error)
    return (code & 0xFF) in _BUSY_CODES


def pause_before(attempt: int, draw: Callable[[], float]) -> float:
    """The pause before retry `attempt` (1, 2, ...): doubling from 5 ms up to 100 ms, times a
    draw in [0.5, 1) so processes that collided once do not collide again in step."""
    ceiling: float = min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2.0 ** min(attempt - 1, 10))
    return ceiling * (0.5 + draw() / 2)


def retry_while_busy(
    step: Callable[[], T],
    timeout_seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
) -> T:
    """Run `step`; while it raises a busy error and the deadline allows, pause and run it again.

    The last busy error is raised once the deadline passes; any other error at once.
    """
    deadline = clock() + timeout_seconds
    attempt = 0
    while True:
        try:
            return step()
        except sqlite3.Error as error:
            attempt += 1
            pause = pause_before(attempt, draw)
            if not is_busy(error) or clock() + pause > deadline:
                raise
        sleep(pause)
