"""Running `python -m esm worker` as a real subprocess and watching its stderr, for tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from esm_processes import EsmProcess

HANDLERS_DIR = Path(__file__).resolve().parent.parent / "handlers"
_SERVING = re.compile(r"esm worker: serving \S+ on (?P<address>\S+) with \d+ environments")
START_TIMEOUT_S = 30.0


class WorkerProcess(EsmProcess):
    """`python -m esm worker ARGS` with exactly the given environment and working directory."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        super().__init__(["worker", *args], env=env, cwd=cwd, inherit_env=False)

    def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT_S) -> re.Match[str]:
        return super().wait_for_line(pattern, timeout)

    def wait_serving(self) -> str:
        """The address the worker serves on (it was started on port 0, so the OS picked the port)."""
        return self.wait_for_line(_SERVING.pattern).group("address")

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        return self.wait(timeout_s)


StartWorker = Callable[..., WorkerProcess]
