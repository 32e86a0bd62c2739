"""The demo's folder (`$TMPDIR/esm-demo-*`), and the removal of older ones the demo left.

A demo keeps its folder (logs, config, SQLite store) so they can be read after it ends; the next
demo removes it, unless told to keep old ones. A folder is the demo's own when it holds the lock
file: the running demo holds an exclusive `flock` on it for its whole life, so a folder whose
lock can be taken belongs to a demo that has ended, and one that is locked is left alone (another
demo is running in it). A folder appears under its final name only with the lock already held
(it is made under a staging name and renamed), so no other demo can see it unlocked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "esm-demo-"
_STAGING_PREFIX = ".esm-demo-starting-"
LOCK_NAME = ".esm-demo.lock"


class DemoWorkdir:
    """A demo's folder with its lock held until `release()`."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd

    @classmethod
    def create(cls, base: Path) -> DemoWorkdir:
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=base))
        lock_fd = os.open(staging / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        for attempt in range(100):
            final = base / f"{PREFIX}{staging.name.removeprefix(_STAGING_PREFIX)}{attempt or ''}"
            try:
                staging.rename(final)  # refused when a non-empty folder of that name exists
            except OSError:
                continue
            return cls(final, lock_fd)
        os.close(lock_fd)
        shutil.rmtree(staging, ignore_errors=True)
        raise OSError(f"cannot name the demo's folder in {base}: every {PREFIX}* name tried exists")

    def release(self) -> None:
        """Let the next demo remove the folder (the folder itself is kept)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None


def remove_old_workdirs(base: Path, keep: Path | None = None) -> list[Path]:
    """Remove the folders under `base` that ended demos left; returns those removed.

    Only this user's folders named `esm-demo-*` holding the lock file count, and only when their
    lock is free: another demo's running folder, or anything else, is never touched.
    """
    removed = []
    for candidate in sorted(base.glob(f"{PREFIX}*")):
        if candidate == keep or not _is_own_folder(candidate):
            continue
        with _lock_if_free(candidate / LOCK_NAME) as free:
            if free:
                shutil.rmtree(candidate, ignore_errors=True)
                removed.append(candidate)
    return removed


def _is_own_folder(path: Path) -> bool:
    try:
        info = path.lstat()
        lock = (path / LOCK_NAME).lstat()
    except OSError:
        return False
    is_dir = os.path.isdir(path) and not path.is_symlink()
    return is_dir and info.st_uid == os.getuid() and lock.st_uid == os.getuid()


@contextlib.contextmanager
def _lock_if_free(lock_path: Path) -> Iterator[bool]:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # a running demo holds it
            return
        yield True
    finally:
        os.close(fd)


def open_demo_folder(base: Path, keep_old: bool) -> tuple[DemoWorkdir, str]:
    """A new demo folder under `base`, the older ones removed unless `keep_old`, and the line that
    tells the user both."""
    folder = DemoWorkdir.create(base)
    removed = [] if keep_old else remove_old_workdirs(base, keep=folder.path)
    return folder, folder_line(folder.path, removed, keep_old)


def folder_line(workdir: Path, removed: list[Path], keep_old: bool) -> str:
    """Where the demo leaves its files, and what became of older demos' folders."""
    if keep_old:
        older = "older demo folders kept (--keep-old)"
    elif removed:
        older = f"removed {len(removed)} older demo folder{'s' * (len(removed) != 1)}"
    else:
        older = "no older demo folder to remove"
    return (
        f"esm demo: logs, config and store go to {workdir}/, left there for you to read; the next demo "
        f"removes it unless run with --keep-old ({older})"
    )
