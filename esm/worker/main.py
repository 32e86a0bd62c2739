"""`esm worker`: start the execution environments, serve FunctionWorker and health, drain on signal.

Start-up order: import the handler in the first environment (a broken handler exits 1 before
anything listens), bind the port (in use: exit 1), start the other environments, serve, and
report SERVING. SIGTERM/SIGINT: NOT_SERVING, refuse new calls with UNAVAILABLE, let in-flight
invocations finish (each bounded by its timeout), stop the environments, exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from esm._proto.esm.v1 import function_pb2_grpc
from esm.wire import GRPC_MAX_MESSAGE_BYTES
from esm.worker.address import ListenAddress, parse_listen
from esm.worker.environment import EnvironmentInitError, ExecutionEnvironment
from esm.worker.handler_spec import HandlerSpec, parse_handler_spec
from esm.worker.pool import EnvironmentPool
from esm.worker.service import SERVICE_NAME, FunctionWorkerService, InvocationDefaults
from esm.worker.stats import STATS_FILE_ENV, InvocationStats

# In-flight calls are already finished when the server stops; this only covers the last replies.
SERVER_STOP_GRACE_S = 1.0
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class WorkerConfig:
    handler: HandlerSpec
    listen: ListenAddress
    concurrency: int
    defaults: InvocationDefaults
    stats_file: Path | None


def run_worker(handler: str, listen: str, function_name: str | None, concurrency: int) -> int:
    """The `esm worker` command; returns the process exit code."""
    try:
        spec = parse_handler_spec(handler)
        address = parse_listen(listen)
        if concurrency < 1:
            raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    except ValueError as exc:
        _say(str(exc))
        return 1
    stats_file = os.environ.get(STATS_FILE_ENV)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    config = WorkerConfig(
        handler=spec,
        listen=address,
        concurrency=concurrency,
        defaults=InvocationDefaults(function_name=function_name or handler, region=region),
        stats_file=Path(stats_file) if stats_file else None,
    )
    return asyncio.run(serve(config))


async def serve(config: WorkerConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    pool = EnvironmentPool(
        lambda environment_id: ExecutionEnvironment(environment_id, config.handler.text),
        config.concurrency,
        log=_say,
    )
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
            # Without this a second server could silently share the port instead of failing.
            ("grpc.so_reuseport", 0),
        ]
    )
    try:
        return await _serve_until_stopped(config, pool, server, stop)
    finally:
        await server.stop(None)
        await pool.close()


async def _serve_until_stopped(
    config: WorkerConfig, pool: EnvironmentPool, server: grpc.aio.Server, stop: asyncio.Event
) -> int:
    try:
        await pool.start_first()
    except EnvironmentInitError as exc:
        _say(f"cannot load handler {config.handler.text!r}: {exc}")
        return 1
    stats = InvocationStats()
    service = FunctionWorkerService(pool, config.defaults, stats, config.stats_file)
    function_pb2_grpc.add_FunctionWorkerServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        port = server.add_insecure_port(str(config.listen))
    except RuntimeError as exc:
        port, cause = 0, str(exc)
    else:
        cause = "the address is in use or not available"
    if not port:
        _say(f"cannot listen on {config.listen}: {cause}")
        return 1
    try:
        await pool.start_rest()
    except EnvironmentInitError as exc:
        _say(f"cannot start execution environments for {config.handler.text!r}: {exc}")
        return 1
    await server.start()
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    _say(f"serving {config.handler.text} on {config.listen.with_port(port)} with {pool.size} environments")

    await stop.wait()
    _say(f"stopping: waiting for {service.in_flight} in-flight invocations")
    await health.enter_graceful_shutdown()
    await service.drain()
    await server.stop(SERVER_STOP_GRACE_S)
    _say("stopped")
    return 0


def _say(message: str) -> None:
    print(f"esm worker: {message}", file=sys.stderr, flush=True)
