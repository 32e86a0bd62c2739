"""Fixtures for the worker tests: `start_worker` runs real `esm worker` processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .worker_process import HANDLERS_DIR, StartWorker, WorkerProcess


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    """`start_worker(handler, *extra_args, cwd=HANDLERS_DIR, env={...})`; stopped after the test."""
    started: list[WorkerProcess] = []

    def start(
        handler: str,
        *extra_args: str,
        cwd: Path = HANDLERS_DIR,
        env: dict[str, str] | None = None,
        listen: str = "127.0.0.1:0",
    ) -> WorkerProcess:
        worker = WorkerProcess(
            [handler, "--listen", listen, *extra_args], cwd=cwd, env={**os.environ, **(env or {})}
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
