"""Fixtures for the worker tests: `start_worker` runs real `esm worker` processes, `client_for`
talks to one over gRPC."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from .grpc_client import CLIENT_OPTIONS, Client
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


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    """`client_for(worker)`: a gRPC client on the worker's address, closed after the test."""
    channels: list[grpc.aio.Channel] = []

    def make(worker: WorkerProcess) -> Client:
        channel = grpc.aio.insecure_channel(worker.wait_serving(), options=CLIENT_OPTIONS)
        channels.append(channel)
        return Client(channel)

    yield make
    for channel in channels:
        await channel.close()
