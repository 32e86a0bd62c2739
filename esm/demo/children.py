"""The demo's child processes (`esm worker`, `esm run`): output to a log file, stopped for sure.

Each child starts in its own session, so a Ctrl-C in the terminal reaches only the demo, which
then stops the children in order (daemon first, so it commits, then the worker). Every child
gets a marker in its environment, inherited by everything it starts (a worker's execution
environments, which run in sessions of their own); `sweep_marked` finds and kills whatever still
carries it, so nothing outlives the demo even when a child did not stop cleanly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

RUN_MARKER_ENV = "ESM_DEMO_RUN_ID"
_TAIL_CHARS = 2000
_PROC = Path("/proc")


class ChildProcess:
    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._process.pid

    def exit_code(self) -> int | None:
        return self._process.poll()

    def describe_exit(self) -> str:
        return (
            f"{self.name} exited with status {self.exit_code()}; "
            f"{self.log_path} ends with:\n{self.log_tail()}"
        )

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_TAIL_CHARS:]
        except FileNotFoundError:
            return ""

    def stop(self, grace_s: float = 15.0) -> int:
        """SIGTERM (its graceful shutdown), then SIGKILL to its process group after `grace_s`."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                return self._process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
        return self._process.wait()


def marked_processes(marker: str, proc: Path = _PROC) -> list[int]:
    """PIDs of live processes whose environment holds RUN_MARKER_ENV=`marker` (Linux /proc)."""
    needle = f"{RUN_MARKER_ENV}={marker}".encode()
    found = []
    for entry in proc.glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # A zombie (state Z) has ended and only awaits its parent's wait().
        if needle in environ.split(b"\0") and _state(state) != "Z":
            found.append(int(entry.name))
    return found


def _state(stat: str) -> str:
    # /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[0] if ")" in stat else ""


def sweep_marked(marker: str) -> list[int]:
    """SIGKILL every live process carrying `marker`; returns their PIDs."""
    pids = marked_processes(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
