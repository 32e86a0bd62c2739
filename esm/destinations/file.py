"""A local file of JSON lines: one line per failure record, appended and fsynced.

Several processes may append to the same file: it is opened with O_APPEND and each record is a
single write(2) of one whole line, so lines never interleave. The file is opened per record, so
a rotated or deleted file is recreated rather than written through a stale handle.

Records hold event payloads: a file esm creates gets `mode` (0600 unless configured; its new
directories the matching search bits, 0700), and a symbolic link at the path is refused unless
`follow_symlinks` (a link planted there would send the payloads elsewhere).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from typing import Any

from esm.destinations.encoding import StoredEntry, encode_record, read_entry
from esm.destinations.errors import DestinationError, DestinationRejectedError, DestinationUnavailableError
from esm.destinations.uri import DEFAULT_FILE_MODE

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


class FileDestination:
    """Appends each record to `path` as one JSON line; `send` returns after fsync."""

    def __init__(self, path: str, mode: int = DEFAULT_FILE_MODE, follow_symlinks: bool = False) -> None:
        self._path = path
        self._mode = mode
        self._follow_symlinks = follow_symlinks

    @property
    def path(self) -> str:
        return self._path

    async def send(self, record: dict[str, Any]) -> None:
        line = encode_record(record) + b"\n"
        await asyncio.to_thread(append_line, self._path, line, self._mode, self._follow_symlinks)

    async def close(self) -> None:
        """Nothing to release: no handle is kept between records."""


def append_line(path: str, line: bytes, mode: int = DEFAULT_FILE_MODE, follow_symlinks: bool = False) -> None:
    """Append `line` (ending in a newline) to `path` durably; raise DestinationError on failure."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=_searchable(mode), exist_ok=True)
        fd, created = _open_for_append(path, mode, follow_symlinks)
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


def _open_for_append(path: str, mode: int, follow_symlinks: bool) -> tuple[int, bool]:
    # Read access too: `_after_torn_line` looks at the last byte. O_EXCL never follows a link;
    # O_NOFOLLOW makes opening the existing path fail (ELOOP) when it is one.
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        if follow_symlinks:  # a dangling link: its target is created
            return os.open(path, flags | os.O_CREAT, mode), False
        return os.open(path, flags | os.O_NOFOLLOW), False
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the process's umask took away
    except OSError:
        os.close(fd)
        raise
    return fd, True


def _searchable(mode: int) -> int:
    """A directory mode for a file mode: search (x) wherever the file may be read (0600 -> 0700)."""
    return mode | (mode & 0o444) >> 2


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
    if exc.errno == errno.ELOOP:
        return DestinationRejectedError(
            f"Destination: file {path!r} is a symbolic link; esm does not write failure records "
            "through one unless the URI says so (file:///path?follow_symlinks=true)"
        )
    message = f"Destination: cannot append to file {path!r}: {exc.strerror or exc}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return DestinationUnavailableError(message)
    return DestinationRejectedError(message)


async def read_file_records(path: str) -> AsyncIterator[StoredEntry]:
    """Every line of the file, oldest first, as a record or an `UnreadableEntry` (a line torn by a
    crash or a full disk: `append_line` starts the next record on a line of its own). A file that
    does not exist is an error: nothing was ever written there, or the path is wrong."""
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except FileNotFoundError as exc:
        raise DestinationRejectedError(
            f"Destination: file {path!r} does not exist (no failure record was ever written there, or "
            "the path is wrong)"
        ) from exc
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
                    yield read_entry(line, f"file {path!r} line {line_number}")
    finally:
        handle.close()
