"""Running `python -m esm worker` as a real subprocess and watching its stderr, for tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

HANDLERS_DIR = Path(__file__).resolve().parent.parent / "handlers"
_SERVING = re.compile(r"esm worker: serving \S+ on (?P<address>\S+) with \d+ environments")
START_TIMEOUT_S = 30.0


class WorkerProcess:
    """A worker subprocess whose stderr is collected line by line on a thread."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "esm", "worker", *args],
            cwd=cwd,
            env=env,
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

    def wait_for_line(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        """The first stderr line matching `pattern`; fails if the process ends or time runs out first."""
        regex = re.compile(pattern)
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(regex.search(line) for line in self._lines) or not self._reader.is_alive(),
                timeout=timeout_s,
            )
            for line in self._lines:
                if match := regex.search(line):
                    return match
        reason = "timed out" if not found else f"worker exited with {self.process.poll()}"
        raise AssertionError(f"no stderr line matching {pattern!r} ({reason}); stderr:\n{self.stderr}")

    def wait_serving(self) -> str:
        """The address the worker serves on (it was started on port 0, so the OS picked the port)."""
        return self.wait_for_line(_SERVING.pattern).group("address")

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)


StartWorker = Callable[..., WorkerProcess]
