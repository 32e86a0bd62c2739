"""MemorySize, enforced per execution environment: a cgroup memory controller where one can be
used, else a watch on the environment's resident memory.

Never an address-space limit (`ulimit -v`): Node.js and Java reserve far more virtual memory than
they use and fail under one. Going over the limit ends the environment (the kernel's OOM killer
in a cgroup, SIGKILL from the watch); `out_of_memory()` then tells the pool to report Lambda's
Runtime.OutOfMemory.

    cgroup v1: <memory mount>/<the worker's own group>/esm-worker-<pid>/env-<id>/memory.limit_in_bytes
    cgroup v2: <the worker's group>/esm-worker-<pid>/env-<id>/memory.max (needs `memory` delegated)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

CGROUP_ROOT = Path("/sys/fs/cgroup")
RSS_WATCH_INTERVAL_S = 0.05
_MB = 1024 * 1024
# Joins its own cgroup, then becomes the environment's process: everything it starts is inside.
_JOIN_AND_EXEC = 'echo $$ > "$0" && exec "$@"'


class MemoryLimitError(Exception):
    """The chosen way of enforcing MemorySize cannot be used on this machine."""


class EnvironmentMemory(Protocol):
    """One environment's memory limit, from before its process starts until after it ended."""

    def wrap(self, argv: list[str]) -> list[str]:
        """The command that starts the environment's process inside the limit."""
        ...

    def started(self, pid: int) -> None: ...

    def peak_mb(self) -> int:
        """The most memory the environment has used so far, in MB (REPORT's Max Memory Used)."""
        ...

    def out_of_memory(self) -> bool: ...

    def release(self) -> None:
        """After the process ended: remove what was made for it."""
        ...


class MemoryEnforcement(Protocol):
    """How this worker limits its environments; `describe()` names it for the start-up log line."""

    def for_environment(self, environment_id: int) -> EnvironmentMemory: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


# ----- cgroups ---------------------------------------------------------------------------------


class CgroupMemory:
    """Per-environment child groups of the worker's own group (v1 or v2 file names)."""

    def __init__(self, base: Path, limit_mb: int, version: int) -> None:
        self._base = base
        self._limit_bytes = limit_mb * _MB
        self._version = version

    @classmethod
    def create(cls, limit_mb: int, root: Path = CGROUP_ROOT) -> CgroupMemory:
        """A group for this worker under its own memory cgroup; MemoryLimitError if none can be made."""
        for version, mount in ((1, root / "memory"), (2, root)):
            own = _own_group(version)
            if own is None:
                continue
            parent = mount / own.lstrip("/")
            if version == 2 and "memory" not in _read(parent / "cgroup.subtree_control").split():
                continue
            if not (parent / ("memory.limit_in_bytes" if version == 1 else "cgroup.procs")).exists():
                continue
            base = parent / f"esm-worker-{os.getpid()}"
            try:
                base.mkdir(exist_ok=True)
            except OSError:
                continue
            return cls(base, limit_mb, version)
        raise MemoryLimitError(
            f"no writable cgroup memory controller under {root} (v1 memory/ or v2 with memory delegated)"
        )

    def for_environment(self, environment_id: int) -> EnvironmentMemory:
        group = self._base / f"env-{environment_id}"
        group.mkdir(exist_ok=True)
        if self._version == 1:
            _write(group / "memory.limit_in_bytes", self._limit_bytes)
            # Without these the group would swap instead of reaching its limit.
            with contextlib.suppress(OSError):
                _write(group / "memory.memsw.limit_in_bytes", self._limit_bytes)
            with contextlib.suppress(OSError):
                _write(group / "memory.swappiness", 0)
        else:
            _write(group / "memory.max", self._limit_bytes)
            with contextlib.suppress(OSError):
                _write(group / "memory.swap.max", 0)
        return _CgroupEnvironment(group, self._version)

    def describe(self) -> str:
        return f"cgroup v{self._version} memory controller ({self._base})"

    def close(self) -> None:
        for group in self._base.glob("env-*"):
            _remove_group(group)
        _remove_group(self._base)


class _CgroupEnvironment:
    def __init__(self, group: Path, version: int) -> None:
        self._group = group
        self._version = version
        # Kept open: a pread is ~1 us where opening the file again is ~40 us, on every REPORT.
        self._peak_fd: int | None = None

    def wrap(self, argv: list[str]) -> list[str]:
        return ["/bin/sh", "-c", _JOIN_AND_EXEC, str(self._group / "cgroup.procs"), *argv]

    def started(self, pid: int) -> None:
        return None

    def peak_mb(self) -> int:
        if self._peak_fd is None:
            name = "memory.max_usage_in_bytes" if self._version == 1 else "memory.peak"
            try:
                self._peak_fd = os.open(self._group / name, os.O_RDONLY)
            except OSError:
                return 0
        try:
            text = os.pread(self._peak_fd, 32, 0).strip()
        except OSError:
            return 0
        return int(text) // _MB if text.isdigit() else 0

    def out_of_memory(self) -> bool:
        name = "memory.oom_control" if self._version == 1 else "memory.events"
        for line in _read(self._group / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def release(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        _remove_group(self._group)


def _own_group(version: int) -> str | None:
    """The worker's own group path in the v1 memory hierarchy or in the v2 unified one."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        if (version == 1 and "memory" in controllers.split(",")) or (version == 2 and controllers == ""):
            return path
    return None


def _remove_group(group: Path) -> None:
    # A group can only go once its processes are gone; the kernel may take a moment to reap them.
    with contextlib.suppress(OSError):
        for pid in _read(group / "cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        group.rmdir()


# ----- resident memory watch --------------------------------------------------------------------


class RssWatch:
    """The fallback: sum the resident memory of the environment's processes every 50 ms and
    SIGKILL the process group when it passes the limit."""

    def __init__(self, limit_mb: int, interval_s: float = RSS_WATCH_INTERVAL_S) -> None:
        self._limit_mb = limit_mb
        self._interval_s = interval_s

    def for_environment(self, environment_id: int) -> EnvironmentMemory:
        return _WatchedEnvironment(self._limit_mb, self._interval_s)

    def describe(self) -> str:
        return "a watch on resident memory (no cgroup memory controller could be used)"

    def close(self) -> None:
        return None


class _WatchedEnvironment:
    def __init__(self, limit_mb: int, interval_s: float) -> None:
        self._limit_mb = limit_mb
        self._interval_s = interval_s
        self._peak_mb = 0
        self._over = False
        self._task: asyncio.Task[None] | None = None

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def started(self, pid: int) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(pid), name=f"rss-watch-{pid}")

    def peak_mb(self) -> int:
        return self._peak_mb

    def out_of_memory(self) -> bool:
        return self._over

    def release(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self, pid: int) -> None:
        while True:
            rss_mb = process_tree_rss_bytes(pid) // _MB
            self._peak_mb = max(self._peak_mb, rss_mb)
            if rss_mb > self._limit_mb:
                self._over = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                return
            if not Path(f"/proc/{pid}").exists():
                return
            await asyncio.sleep(self._interval_s)


def process_tree_rss_bytes(pid: int) -> int:
    """Resident bytes of `pid` and its descendants (from /proc; 0 for a process that is gone)."""
    total, stack, seen = 0, [pid], set()
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        fields = _read(Path(f"/proc/{current}/statm")).split()
        if len(fields) > 1 and fields[1].isdigit():
            total += int(fields[1]) * page
        for task in Path(f"/proc/{current}/task").glob("*"):
            stack.extend(int(child) for child in _read(task / "children").split() if child.isdigit())
    return total


# ----- no limit ---------------------------------------------------------------------------------


class NoLimit:
    """MemorySize not set: nothing enforced; the peak is the process's own high-water mark."""

    def for_environment(self, environment_id: int) -> EnvironmentMemory:
        return _Unlimited()

    def describe(self) -> str:
        return "no memory limit (MemorySize not set)"

    def close(self) -> None:
        return None


class _Unlimited:
    # Reading /proc/PID/status costs ~0.1 ms, too much for every invocation's REPORT line.
    REFRESH_S = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._pid = 0
        self._peak_mb = 0
        self._clock = clock
        self._read_at = -self.REFRESH_S

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def started(self, pid: int) -> None:
        self._pid = pid

    def peak_mb(self) -> int:
        """The process's high-water mark of resident memory (VmHWM), read at most once a second."""
        now = self._clock()
        if now - self._read_at >= self.REFRESH_S:
            self._read_at = now
            for line in _read(Path(f"/proc/{self._pid}/status")).splitlines():
                if line.startswith("VmHWM:"):
                    self._peak_mb = max(self._peak_mb, int(line.split()[1]) // 1024)
        return self._peak_mb

    def out_of_memory(self) -> bool:
        return False

    def release(self) -> None:
        return None


def choose_enforcement(limit_mb: int | None, mode: str) -> MemoryEnforcement:
    """`mode`: auto (a cgroup, else the watch), cgroup (fail if none), rss (the watch)."""
    if limit_mb is None:
        return NoLimit()
    if mode == "rss":
        return RssWatch(limit_mb)
    try:
        return CgroupMemory.create(limit_mb)
    except MemoryLimitError:
        if mode == "cgroup":
            raise
        return RssWatch(limit_mb)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))
