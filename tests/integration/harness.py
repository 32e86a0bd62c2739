"""Running the real engine for integration tests: `esm worker` and `esm run` subprocesses, config
files, and reading back what the handler saw and what the group committed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esm_processes import REPO, EsmProcess

from esm.embedded.topics import committed_offsets
from esm.netutil import free_port

FAST_GROUP = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300, "fetch.max.wait.ms": 20}


class Worker(EsmProcess):
    def __init__(
        self,
        handler: str,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        port: int | None = None,
        function_name: str = "fn",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        super().__init__(
            [
                "worker",
                handler,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--concurrency",
                str(concurrency),
                "--function-name",
                function_name,
                *extra_args,
            ],
            env=env,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_serving(self) -> Worker:
        self.wait_for_line(r"esm worker: serving")
        return self


def mapping(bootstrap: str, topic: str, group: str, function: str = "fn", **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "FunctionName": function,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
        "Topics": [topic],
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "KafkaConsumerConfig": dict(FAST_GROUP),
    }
    entry.update(overrides)
    return entry


def write_config(
    path: Path,
    functions: list[dict[str, Any]],
    mappings: list[dict[str, Any]],
    store: str | None = None,
    **extra: Any,
) -> Path:
    config = {
        "Store": store or f"sqlite:///{path.parent.resolve() / 'esm-state.db'}",
        "Metrics": {"Port": free_port(), "Host": "127.0.0.1"},
        "ShutdownGracePeriodSeconds": 10,
        "Functions": functions,
        "EventSourceMappings": mappings,
        **extra,
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def daemon(config: Path, processes: int = 1) -> EsmProcess:
    return EsmProcess(["run", "-c", str(config), "--processes", str(processes)])


@dataclass(frozen=True)
class Delivered:
    partition: int
    offset: int
    value: bytes


def complete_lines(path: Path) -> list[str]:
    """The file's newline-terminated lines: a handler may be mid-write (a reader can see part of
    one large write), so a last line without its newline is not read yet."""
    if not path.exists():
        return []
    return path.read_text().split("\n")[:-1]


def recorded(path: Path) -> list[Delivered]:
    """Every Kafka record the recorder handler was invoked with, in invocation order per file line."""
    out: list[Delivered] = []
    for line in complete_lines(path):
        event = json.loads(line)
        for records in event["records"].values():
            for r in records:
                out.append(Delivered(r["partition"], r["offset"], base64.b64decode(r["value"])))
    return out


def wait_until(
    condition: Callable[[], bool],
    timeout: float = 60.0,
    interval: float = 0.2,
    message: str | Callable[[], str] = "condition",
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {message if isinstance(message, str) else message()}"
            )
        time.sleep(interval)


def wait_committed(
    bootstrap: str, group: str, topic: str, total: int, timeout: float = 60.0
) -> dict[int, int]:
    seen: dict[int, int] = {}

    def done() -> bool:
        nonlocal seen
        seen = committed_offsets(bootstrap, group, topic)
        return sum(seen.values()) >= total

    wait_until(done, timeout, message=lambda: f"{total} committed on {topic}, have {seen}")
    return seen


def unique_values(n: int, prefix: str = "r") -> Iterator[bytes]:
    return (f"{prefix}{i}".encode() for i in range(n))


def esm_status(config: Path) -> list[dict[str, Any]]:
    """What `esm status -c CONFIG --json` prints, parsed (the command must succeed)."""
    result = subprocess.run(
        [sys.executable, "-m", "esm", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed
