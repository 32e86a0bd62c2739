"""A local file of JSON lines: one line per failure record, appended and fsynced.

Several processes may append to the same file: it is opened with O_APPEND and each record is a
single write(2) of one whole line, so lines never interleave. The file is opened per record, so
a rotated or deleted file is recreated rather than written through a stale handle.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from typing import Any

from esm.destinations.encoding import decode_record, encode_record
from esm.destinations.errors import DestinationError, DestinationRejectedError, DestinationUnavailableError

# Conditions that pass without anyone changing the configuration: retry the same record later.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EAGAIN,
        errno.EINTR,
        errno.ENOMEM,
        errno.EBUSY,
        errno.EMFILE,
        errno.ENFILE,
        errno.ETIMEDOUT,
        errno.ESTALE,
    }
)
_READ_CHUNK_BYTES = 1 << 20
_FILE_MODE = 0o644


class FileDestination:
    """Appends each record to `path` as one JSON line; `send` returns after fsync."""

    def __init__(self, path: str) -> None:
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    async def send(self, record: dict[str, Any]) -> None:
        line = encode_record(record) + b"\n"
        await asyncio.to_thread(append_line, self._path, line)

    async def close(self) -> None:
        """Nothing to release: no handle is kept between records."""


def append_line(path: str, line: bytes) -> None:
    """Append `line` (ending in a newline) to `path` durably; raise DestinationError on failure."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        fd, created = _open_for_append(path)
        try:
            _write_all(fd, _after_torn_line(fd, line))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            # The new directory entry must survive a crash too, not only the file's data.
            _fsync_directory(directory)
    except OSError as exc:
        raise _translate(exc, path) from exc


def _open_for_append(path: str) -> tuple[int, bool]:
    # Read access too: `_after_torn_line` looks at the last byte.
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, _FILE_MODE), True
    except FileExistsError:
        return os.open(path, flags), False


def _after_torn_line(fd: int, line: bytes) -> bytes:
    """Start on a fresh line if the file ends mid-line (a crash during an earlier write).

    Without this the new record would be glued to the torn one and both lines would be unreadable.
    """
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        return b"\n" + line
    return line


def _write_all(fd: int, data: bytes) -> None:
    # Linux writes a regular file's buffer whole; the loop only matters after a short write
    # (a signal, a full disk), where finishing the line beats leaving it torn.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _translate(exc: OSError, path: str) -> DestinationError:
    message = f"Destination: cannot append to file {path!r}: {exc.strerror or exc}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return DestinationUnavailableError(message)
    return DestinationRejectedError(message)


async def read_file_records(path: str) -> AsyncIterator[dict[str, Any]]:
    """Every record in the file, oldest first; a file that does not exist holds none."""
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DestinationError(f"Destination: cannot read file {path!r}: {exc.strerror or exc}") from exc
    line_number = 0
    try:
        while True:
            lines = await asyncio.to_thread(handle.readlines, _READ_CHUNK_BYTES)
            if not lines:
                return
            for line in lines:
                line_number += 1
                if line.strip():
                    yield decode_record(line, f"file {path!r} line {line_number}")
    finally:
        handle.close()
