"""One SQLite connection shared by every role of a store, used from one dedicated thread.

Several processes on one host share the file: WAL mode lets readers run beside the single
writer, read-modify-write steps run in `BEGIN IMMEDIATE` transactions (the write lock is taken
up front, so two processes never both read and then both write), and `busy_timeout` makes a
process wait for the lock instead of failing at once. Opening retries the few lock refusals
SQLite makes without waiting (`busy_retry`), so any number of processes may open a fresh file at
once. Calls run on a single worker thread so a wait for the lock never blocks the event loop and
the connection is never used concurrently.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from esm.stores.errors import StoreConfigError, StoreUnavailableError
from esm.stores.sqlite.busy_retry import retry_while_busy

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_SECONDS = 10.0


class SqliteDatabase:
    def __init__(self, path: str, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._path = path
        self._connection = connection
        self._executor = executor

    @classmethod
    def open(
        cls, path: str, schema: Sequence[str], busy_timeout_seconds: float = DEFAULT_BUSY_TIMEOUT_SECONDS
    ) -> SqliteDatabase:
        """Open (creating if needed) the database file, switch it to WAL and apply `schema`.

        `schema` holds idempotent statements (CREATE ... IF NOT EXISTS) from every role.
        """
        try:
            # isolation_level=None: no implicit transactions; each role says BEGIN IMMEDIATE itself.
            connection = sqlite3.connect(
                path, timeout=busy_timeout_seconds, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreConfigError(f"Store: cannot open SQLite database {path!r}: {exc}") from exc
        try:
            # Before anything else, so every later step waits for locks instead of failing.
            connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
            retry_while_busy(lambda: _prepare(connection, path, schema), busy_timeout_seconds)
        except sqlite3.Error as exc:
            connection.close()
            raise StoreConfigError(f"Store: cannot prepare SQLite database {path!r}: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esm-sqlite")
        return cls(path, connection, executor)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the database thread; SQLite errors become StoreUnavailableError.

        If the awaiting task is cancelled, `work` still runs to its end on the thread: callers
        that must know its outcome (a permit taken) shield the call.
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work, self._connection)
        except sqlite3.OperationalError as exc:
            # "database is locked" past busy_timeout, disk I/O errors: another attempt may succeed.
            raise StoreUnavailableError(f"Store: SQLite database {self._path!r}: {exc}") from exc

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=True)


def immediate(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` in a BEGIN IMMEDIATE transaction: committed if it returns, rolled back if not."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
    except BaseException:
        # SQLite may already have rolled back by itself (e.g. on a full disk).
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


def _prepare(connection: sqlite3.Connection, path: str, schema: Sequence[str]) -> None:
    """WAL mode, then the schema: each step idempotent, so a refused attempt is simply run again."""
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreConfigError(
            f"Store: SQLite database {path!r} cannot use WAL mode (got {mode!r}); "
            "it must be on a local file system"
        )
    # NORMAL is durable against a process crash in WAL mode; only power loss can drop the last
    # transactions.
    connection.execute("PRAGMA synchronous = NORMAL")
    immediate(connection, lambda conn: _apply_schema(conn, schema))


def _apply_schema(connection: sqlite3.Connection, schema: Sequence[str]) -> None:
    for statement in schema:
        connection.execute(statement)
