"""`esm worker`: start the execution environments, serve FunctionWorker and health, drain on signal.

Start-up order: check the port is free, initialise the first provisioned environment (a runtime
that cannot initialise exits 1 before anything listens), bind, initialise the other provisioned
ones, serve, and report SERVING. SIGTERM/SIGINT: NOT_SERVING, refuse new calls with UNAVAILABLE,
let in-flight invocations finish (each bounded by its timeout), stop the environments, exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from esm._proto.esm.v1 import function_pb2_grpc
from esm.metrics_server import MetricsPortError, MetricsServer
from esm.wire import GRPC_MAX_MESSAGE_BYTES
from esm.worker.address import ListenAddress
from esm.worker.bootstrap_environment import BootstrapEnvironment
from esm.worker.environment import EnvironmentInitError, ExecutionEnvironment, PythonEnvironment
from esm.worker.lambda_environment import DEFAULT_MEMORY_MB, FunctionEnvironment
from esm.worker.memory_limit import MemoryEnforcement, MemoryLimitError, choose_enforcement
from esm.worker.metrics import WorkerMetrics
from esm.worker.observer import InvocationObserver
from esm.worker.output import LogSink
from esm.worker.pool import EnvironmentPool
from esm.worker.sandbox import SandboxFactory
from esm.worker.service import SERVICE_NAME, FunctionWorkerService, InvocationDefaults
from esm.worker.settings import ServerTls, WorkerFlags, WorkerSettings, resolve
from esm.worker.stats import STATS_FILE_ENV, InvocationStats

if TYPE_CHECKING:
    from esm.config.function import FunctionConfig

# In-flight calls are already finished when the server stops; this only covers the last replies.
SERVER_STOP_GRACE_S = 1.0
DEFAULT_REGION = "us-east-1"


def run_worker(flags: WorkerFlags) -> int:
    """The `esm worker` command; returns the process exit code."""
    try:
        function = _function_from_config(flags)
        settings = resolve(flags, function)
    except ValueError as exc:
        for problem in str(exc).splitlines():
            _say(problem)
        return 1
    return asyncio.run(serve(settings))


def _function_from_config(flags: WorkerFlags) -> FunctionConfig | None:
    if flags.config is None:
        return None
    from esm.config import ConfigError, load_config  # only now: the config model is heavy to import

    if not flags.function_name:
        raise ValueError("--config needs --function-name: the function whose settings to use")
    try:
        config = load_config(flags.config).config
    except ConfigError as exc:
        raise ValueError("\n".join(exc.problems)) from exc
    try:
        return config.function(flags.function_name)
    except KeyError:
        raise ValueError(
            f"--function-name {flags.function_name!r}: no such function in {flags.config}"
        ) from None


async def serve(settings: WorkerSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    problem = _port_problem(settings.listen)
    if problem is not None:
        _say(f"cannot listen on {settings.listen}: {problem}")
        return 1
    try:
        memory = choose_enforcement(settings.memory_mb, settings.memory_enforcement)
    except MemoryLimitError as exc:
        _say(f"--memory-enforcement cgroup: {exc}")
        return 1
    tmp_base = Path(tempfile.mkdtemp(prefix="esm-worker-"))
    metrics = WorkerMetrics()
    pool = _pool(settings, memory, tmp_base, metrics)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
            # Without this a second server could silently share the port instead of failing.
            ("grpc.so_reuseport", 0),
        ]
    )
    try:
        if settings.memory_mb is not None:
            _say(f"MemorySize {settings.memory_mb} MB enforced by {memory.describe()}")
        return await _serve_until_stopped(settings, pool, server, stop, metrics)
    finally:
        await server.stop(None)
        await pool.close()
        memory.close()
        shutil.rmtree(tmp_base, ignore_errors=True)


def _pool(
    settings: WorkerSettings, memory: MemoryEnforcement, tmp_base: Path, metrics: WorkerMetrics
) -> EnvironmentPool:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "local"
    function = FunctionEnvironment(
        function_name=settings.function_name,
        handler=settings.handler_name,
        task_root=os.getcwd(),
        region=region,
        memory_mb=settings.memory_mb or DEFAULT_MEMORY_MB,
        variables=settings.variables,
    )
    sink = LogSink()
    sandboxes = SandboxFactory(function, memory, sink, tmp_base)

    def factory(environment_id: int, initialization_type: str) -> ExecutionEnvironment:
        sandbox = sandboxes.make(environment_id, initialization_type)
        if settings.bootstrap is not None:
            return BootstrapEnvironment(sandbox, settings.bootstrap, _say)
        assert settings.python_handler is not None
        return PythonEnvironment(sandbox, settings.python_handler)

    return EnvironmentPool(
        factory,
        settings.concurrency,
        log=_say,
        observer=InvocationObserver(sink, metrics),
        provisioned=settings.provisioned,
    )


async def _serve_until_stopped(
    settings: WorkerSettings,
    pool: EnvironmentPool,
    server: grpc.aio.Server,
    stop: asyncio.Event,
    metrics: WorkerMetrics,
) -> int:
    runtime = settings.bootstrap or settings.python_handler
    try:
        await pool.start_first()
    except EnvironmentInitError as exc:
        what = "load handler" if settings.python_handler else "initialise the runtime"
        _say(f"cannot {what} {runtime!r}: {exc}")
        return 1
    stats = InvocationStats()
    stats_file = os.environ.get(STATS_FILE_ENV)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    defaults = InvocationDefaults(
        function_name=settings.function_name,
        region=region,
        timeout_ms=settings.timeout_seconds * 1000 if settings.timeout_seconds else None,
        memory_mb=settings.memory_mb,
    )
    service = FunctionWorkerService(pool, defaults, stats, Path(stats_file) if stats_file else None)
    function_pb2_grpc.add_FunctionWorkerServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        port = _add_port(server, settings)
    except RuntimeError as exc:
        port, cause = 0, str(exc)
    else:
        cause = "the address is in use or not available"
    if not port:
        _say(f"cannot listen on {settings.listen}: {cause}")
        return 1
    try:
        metrics_server = _start_metrics_server(settings.metrics_port, metrics)
    except MetricsPortError as exc:
        _say(str(exc).replace("Metrics.Port", "--metrics-port"))
        return 1
    try:
        await pool.start_rest()
    except EnvironmentInitError as exc:
        _say(f"cannot start execution environments for {runtime!r}: {exc}")
        return 1
    await server.start()
    # What start-up made (modules, gRPC, the pool) lives as long as the worker: out of the
    # collector's reach, a full collection no longer walks it (about 30 ms on a 2-core machine,
    # a pause every invocation in flight would wait out), as the daemon does (esm.daemon).
    gc.freeze()
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    _say(
        f"serving {runtime} on {settings.listen.with_port(port)} with {pool.size} environments "
        f"({pool.provisioned} initialised){_describe_tls(settings.tls)}"
    )

    await stop.wait()
    _say(f"stopping: waiting for {service.in_flight} in-flight invocations")
    await health.enter_graceful_shutdown()
    await service.drain()
    await server.stop(SERVER_STOP_GRACE_S)
    if metrics_server is not None:
        metrics_server.stop()
    _say("stopped")
    return 0


def _add_port(server: grpc.aio.Server, settings: WorkerSettings) -> int:
    """Listens in plain gRPC, or TLS with --tls-cert (client certificates required with --tls-client-ca)."""
    tls = settings.tls
    if tls is None:
        port: int = server.add_insecure_port(str(settings.listen))
        return port
    credentials = grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )
    secure_port: int = server.add_secure_port(str(settings.listen), credentials)
    return secure_port


def _describe_tls(tls: ServerTls | None) -> str:
    if tls is None:
        return ""
    return " over TLS" + (" (client certificates required)" if tls.client_ca is not None else "")


def _start_metrics_server(port: int | None, metrics: WorkerMetrics) -> MetricsServer | None:
    """The /metrics server, None without --metrics-port; MetricsPortError when it cannot listen."""
    if port is None:
        return None
    server = MetricsServer("0.0.0.0", port, metrics.registry, healthy=lambda: True)
    server.start()
    _say(f"metrics on http://0.0.0.0:{server.port}/metrics")
    return server


def _port_problem(listen: ListenAddress) -> str | None:
    """Why the gRPC server could not bind, found before gRPC tries (it logs raw core lines then)."""
    host = listen.host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _say(message: str) -> None:
    print(f"esm worker: {message}", file=sys.stderr, flush=True)
