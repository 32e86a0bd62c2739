"""Starting the engine's two processes for the demo and waiting until each is ready.

- `esm worker` is ready when its gRPC health service reports SERVING;
- `esm run` is ready when its /metrics page shows it owns every partition of the topic (the
  consumer group has joined), so records produced from then on are delivered at once.
Every wait is bounded, notices a child that exited (with the end of its log), and gives way
to Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from esm.demo.children import ChildProcess
from esm.demo.engine_metrics import scrape
from esm.demo.stop_requests import StopRequests
from esm.netutil import free_port

WORKER_HANDLER = "esm.demo.handler.handler"
WORKER_READY_TIMEOUT_S = 60.0
ENGINE_READY_TIMEOUT_S = 60.0
_POLL_S = 0.05


class LaunchError(RuntimeError):
    """A child process exited or did not become ready; the message holds the end of its log."""


def esm_command(*args: str) -> list[str]:
    """`python -m esm ARGS` with this interpreter, so children run the same esm as the demo."""
    return [sys.executable, "-m", "esm", *args]


def start_worker(
    function_name: str,
    concurrency: int,
    workdir: Path,
    env: Mapping[str, str],
    stops: StopRequests,
) -> tuple[ChildProcess, str]:
    endpoint = f"127.0.0.1:{free_port()}"
    worker = ChildProcess(
        "esm worker",
        esm_command(
            "worker",
            WORKER_HANDLER,
            "--listen",
            endpoint,
            "--function-name",
            function_name,
            "--concurrency",
            str(concurrency),
        ),
        workdir / "worker.log",
        cwd=workdir,
        env=env,
    )
    with grpc.insecure_channel(endpoint) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        wait_ready(
            worker,
            lambda: _serving(stub),
            WORKER_READY_TIMEOUT_S,
            stops,
            f"esm worker did not report SERVING on {endpoint}",
        )
    return worker, endpoint


def _serving(stub: health_pb2_grpc.HealthStub) -> bool:
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
    except grpc.RpcError:
        return False  # not listening yet
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def start_daemon(config_path: Path, workdir: Path, env: Mapping[str, str]) -> ChildProcess:
    return ChildProcess(
        "esm run",
        esm_command("run", "-c", str(config_path), "--processes", "1"),
        workdir / "daemon.log",
        cwd=workdir,
        env=env,
    )


def wait_engine_ready(daemon: ChildProcess, metrics_url: str, partitions: int, stops: StopRequests) -> None:
    def owns_all() -> bool:
        snapshot = scrape(metrics_url)
        return snapshot is not None and snapshot.partitions_owned >= partitions

    wait_ready(
        daemon,
        owns_all,
        ENGINE_READY_TIMEOUT_S,
        stops,
        f"esm run did not take all {partitions} partitions (see {metrics_url})",
    )


def wait_ready(
    child: ChildProcess,
    ready: Callable[[], bool],
    timeout_s: float,
    stops: StopRequests,
    failure: str,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    deadline = clock() + timeout_s
    while not ready():
        if child.exit_code() is not None:
            raise LaunchError(child.describe_exit())
        stops.raise_if_stopping(f"waiting for {child.name}")
        if clock() > deadline:
            raise LaunchError(
                f"{failure} within {timeout_s:.0f}s; {child.log_path} ends with:\n{child.log_tail()}"
            )
        time.sleep(_POLL_S)  # waiting on a real child process
