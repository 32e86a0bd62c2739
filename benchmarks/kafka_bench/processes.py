"""A child process with its output in a log file, stopped politely then firmly."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

_TAIL_CHARS = 3000


class ManagedProcess:
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

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_TAIL_CHARS:]
        except FileNotFoundError:
            return ""

    def describe_exit(self) -> str:
        status = self.exit_code()
        return f"{self.name} exited with status {status}; {self.log_path} ends with:\n{self.log_tail()}"

    def stop(self, grace_s: float = 15.0) -> int:
        """SIGTERM (the engine's two-phase shutdown), then SIGKILL after `grace_s`; returns the status."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                return self._process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                # The whole session: a worker's execution environments are its children.
                os.killpg(self._process.pid, signal.SIGKILL)
        return self._process.wait()
