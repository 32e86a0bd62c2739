"""Starting the engine for a benchmark: a function worker (`esm worker`) and the daemon (`esm run`).

The config file is written in the engine's own format (AWS parameter names); `engine_config` is
the one place that knows its shape.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from esm.demo.children import ChildProcess as ManagedProcess
from esm.netutil import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# The consumer settings of the brief: a short session so Tansu's JoinGroup hold (half the session
# timeout) costs ~0.75 s, and a short fetch wait because Tansu does not wake a waiting fetch.
KAFKA_CONSUMER_CONFIG = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300, "fetch.max.wait.ms": 10}
# For idle measurements: Kafka's default fetch wait, and the short group timings Tansu needs.
KAFKA_CONSUMER_CONFIG_IDLE = {
    "session.timeout.ms": 1500,
    "heartbeat.interval.ms": 300,
    "fetch.max.wait.ms": 500,
}
WORKER_READY_TIMEOUT_S = 60.0


class EngineUnavailable(RuntimeError):
    """The engine (or the part of it a benchmark needs) is not installed or did not start."""


def require_engine() -> None:
    """Fail with a clear message when `esm run` or `esm worker` cannot run in this checkout."""
    missing = [
        module for module in ("esm.daemon", "esm.worker.main") if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise EngineUnavailable(
            f"the engine is not available in this checkout: {', '.join(missing)} missing, so `esm run` / "
            "`esm worker` cannot start; run only the baseline with --parts baseline"
        )


def esm_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "esm", *args]


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment, with the repo root importable (handlers are `benchmarks.handlers.*`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class MappingSpec:
    bootstrap: str
    topic: str
    group_id: str
    function_name: str
    worker_endpoint: str
    batch_size: int = 500
    batching_window_s: float = 0.0
    consumer_config: Mapping[str, Any] = field(default_factory=lambda: dict(KAFKA_CONSUMER_CONFIG))
    kafka_client: str = "kafka-python"


def engine_config(store_url: str, metrics_port: int, mapping: MappingSpec) -> dict[str, Any]:
    """One function (the benchmark worker) and one Kafka mapping on the benchmark topic."""
    return {
        "Store": store_url,
        "Metrics": {"Host": "127.0.0.1", "Port": metrics_port},
        "Functions": [
            {"FunctionName": mapping.function_name, "Endpoints": [mapping.worker_endpoint], "Timeout": 30}
        ],
        "EventSourceMappings": [
            {
                "FunctionName": mapping.function_name,
                "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [mapping.bootstrap]}},
                "Topics": [mapping.topic],
                "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": mapping.group_id},
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": mapping.batch_size,
                "MaximumBatchingWindowInSeconds": mapping.batching_window_s,
                "KafkaConsumerConfig": dict(mapping.consumer_config),
                "KafkaClient": mapping.kafka_client,
            }
        ],
    }


def write_config(workdir: Path, mapping: MappingSpec) -> Path:
    """The Kafka benchmark's config, written and checked (`write_checked_config`)."""
    config = engine_config(f"sqlite:///{(workdir / 'store.sqlite').resolve()}", free_port(), mapping)
    return write_checked_config(workdir, config)


def write_checked_config(workdir: Path, config: Mapping[str, Any]) -> Path:
    """Write a benchmark's config (JSON, which YAML loaders read too) and check it with `esm validate`."""
    path = workdir / "esm-config.json"
    path.write_text(json.dumps(config, indent=2))
    if importlib.util.find_spec("esm.config.loader") is not None:
        check = subprocess.run(
            esm_command("validate", "-c", str(path)), capture_output=True, text=True, env=child_environment()
        )
        if check.returncode != 0:
            raise EngineUnavailable(
                f"`esm validate` rejects the benchmark's config {path} (update engine_config in "
                f"{Path(__file__).name}):\n{check.stdout}{check.stderr}"
            )
    return path


def start_worker(
    handler: str, workdir: Path, concurrency: int = 4, env: Mapping[str, str] | None = None
) -> tuple[ManagedProcess, str]:
    """Start `esm worker HANDLER` on a free port and wait until it reports SERVING."""
    endpoint = f"127.0.0.1:{free_port()}"
    worker = ManagedProcess(
        "esm worker",
        esm_command("worker", handler, "--listen", endpoint, "--concurrency", str(concurrency)),
        workdir / "worker.log",
        cwd=REPO_ROOT,
        env=child_environment(env),
    )
    try:
        _wait_serving(endpoint, worker, WORKER_READY_TIMEOUT_S)
    except BaseException:
        worker.stop()
        raise
    return worker, endpoint


def _wait_serving(endpoint: str, worker: ManagedProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(endpoint) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if worker.exit_code() is not None:
                raise EngineUnavailable(worker.describe_exit())
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass  # not listening yet
            time.sleep(0.05)
    raise EngineUnavailable(f"esm worker did not report SERVING on {endpoint} within {timeout_s}s")


def start_daemon(config_path: Path, workdir: Path, processes: int = 1) -> ManagedProcess:
    return ManagedProcess(
        "esm run",
        esm_command("run", "-c", str(config_path), "--processes", str(processes)),
        workdir / "daemon.log",
        cwd=REPO_ROOT,
        env=child_environment(),
    )
