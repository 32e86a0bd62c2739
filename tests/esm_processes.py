"""Running `esm` subcommands as real subprocesses for tests, with their stderr collected."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def logged_at(line: str) -> float:
    """The time of an esm log line (`2026-12-07 06:31:57,255 ...`, local time), as a POSIX timestamp."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


class EsmProcess:
    """An `esm` subcommand as a subprocess; stderr collected line by line on a thread."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
        inherit_env: bool = True,
        prefix: list[str] | None = None,
    ) -> None:
        """`env` adds to this process's environment (with the repository on PYTHONPATH), or with
        `inherit_env=False` is the child's whole environment. `prefix` runs it through another
        command that execs it (e.g. into a network namespace), so the pid is still esm's."""
        self.args = args
        child_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})} if inherit_env else dict(env or {})
        self.process = subprocess.Popen(
            [*(prefix or []), sys.executable, "-m", "esm", *args],
            cwd=cwd,
            env=child_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        regex = re.compile(pattern)
        with self._changed:
            self._changed.wait_for(
                lambda: any(regex.search(line) for line in self._lines) or not self._reader.is_alive(),
                timeout=timeout,
            )
            for line in self._lines:
                if match := regex.search(line):
                    return match
        raise AssertionError(
            f"no line matching {pattern!r} (exit {self.process.poll()}); stderr:\n{self.stderr}"
        )

    def stop(self, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(timeout=5)
        return code

    def wait(self, timeout: float = 30.0) -> int:
        """Waits for the process to end by itself."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
