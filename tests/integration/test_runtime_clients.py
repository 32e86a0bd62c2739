"""Functions behind AWS's own runtime clients, end to end: `esm worker --bootstrap` serving the
Runtime API to awslambdaric (PyPI), aws-lambda-ric (npm) and a shell bootstrap using curl, behind
`esm run` on a Kafka topic and on a Kinesis stream.

One worker per runtime serves every scenario (tests/runtimes/README.md): records delivered, a
function error retried then sent to the destination with the runtime's own errorType, a timeout,
a crash mid-invocation, memory over MemorySize, a partial batch response; a second worker, with
nothing initialised before it serves, fails its runtime's init. Each scenario has its own topic
or stream, mapping and file destination, all in one `esm run`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from esm_processes import EsmProcess
from stream_services import KinesisMock

from esm.embedded.topics import OutgoingRecord, committed_offsets, produce
from esm.netutil import free_port

from .harness import complete_lines, mapping, wait_until, write_config
from .stream_harness import create_kinesis_stream, emulator_env, kinesis_mapping, put_records
from .test_kafka_failures import read_all

RUNTIMES_DIR = Path(__file__).resolve().parents[1] / "runtimes"
NODE_RIC_VERSION = "4.0.2"
NODE_RIC_DIR = (
    Path(
        os.environ.get("ESM_NODE_RIC_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "esm"
        / f"aws-lambda-ric-{NODE_RIC_VERSION}"
    )
    / "node_modules"
)


@dataclass(frozen=True)
class Runtime:
    folder: str
    handler: str
    # The errorType each runtime posts when its init fails (the shell bootstrap names its own).
    init_error_type: str


RUNTIMES = {
    "awslambdaric": Runtime("python", "scenario.handler", "Runtime.ImportModuleError"),
    "aws-lambda-ric": Runtime("node", "scenario.handler", "Error"),  # it names the thrown error
    "shell-curl": Runtime("shell", "scenario.handler", "ScenarioInitError"),
}


@dataclass(frozen=True)
class Scenario:
    values: tuple[str, ...]
    retries: int = 0
    # The destination's lastFunctionError.errorType, or None when nothing should go there.
    error_type: str | None = None
    function: str = "fn"
    partial: bool = False


SCENARIOS = {
    "delivered": Scenario(("ok-1", "ok-2", "ok-3")),
    "error": Scenario(("fail",), retries=1, error_type="ScenarioError"),
    # A function of its own, with a short Timeout, on fn's worker: the invocation carries its Timeout.
    "timeout": Scenario(("sleep",), error_type="Sandbox.Timedout", function="fn-short"),
    "crash": Scenario(("crash",), error_type="Runtime.ExitError"),
    "memory": Scenario(("oom",), error_type="Runtime.OutOfMemory"),
    "partial": Scenario(("ok-a", "partial", "ok-c"), retries=1, partial=True),
    "init": Scenario(("ok-x",), function="fn-init"),  # error_type: the runtime's, filled in below
}


def worker(runtime: Runtime, env: dict[str, str], port: int, *args: str) -> EsmProcess:
    return EsmProcess(
        [
            "worker",
            "--bootstrap",
            "./bootstrap",
            "--handler",
            runtime.handler,
            "--listen",
            f"127.0.0.1:{port}",
            *args,
        ],
        env=env,
        cwd=RUNTIMES_DIR / runtime.folder,
    )


@pytest.fixture(params=list(RUNTIMES))
def runtime(request: pytest.FixtureRequest) -> Runtime:
    if request.param == "aws-lambda-ric" and not (NODE_RIC_DIR / ".bin" / "aws-lambda-ric").exists():
        pytest.fail(
            f"aws-lambda-ric@{NODE_RIC_VERSION} is not built in {NODE_RIC_DIR}: run scripts/test.sh once"
        )
    return RUNTIMES[request.param]


class RuntimeRun:
    """Two workers for one runtime and the destination file of each scenario."""

    def __init__(self, runtime: Runtime, tmp_path: Path, extra_env: dict[str, str]) -> None:
        self.runtime = runtime
        self.tmp_path = tmp_path
        self.recorder = tmp_path / "events.jsonl"
        self.env = {
            "ESM_TEST_PYTHON": sys.executable,
            "ESM_NODE_RIC": str(NODE_RIC_DIR),
            **extra_env,
        }
        self.ports = {"fn": free_port(), "fn-init": free_port()}
        self.workers: list[EsmProcess] = []

    def destination(self, name: str) -> str:
        return f"file://{self.tmp_path / f'failures-{name}.jsonl'}"

    def functions(self) -> list[dict[str, Any]]:
        return [
            {
                "FunctionName": "fn",
                "Endpoints": [f"127.0.0.1:{self.ports['fn']}"],
                "Timeout": 10,  # room for a busy machine: the memory scenarios must reach their limit first
                "MemorySize": 128,
                "Environment": {"Variables": {"ESM_RECORDER_FILE": str(self.recorder)}},
            },
            {
                "FunctionName": "fn-short",
                "Endpoints": [f"127.0.0.1:{self.ports['fn']}"],
                "Timeout": 2,
                "Environment": {"Variables": {"ESM_RECORDER_FILE": str(self.recorder)}},
            },
            {"FunctionName": "fn-init", "Endpoints": [f"127.0.0.1:{self.ports['fn-init']}"], "Timeout": 5},
        ]

    def start_workers(self, config: Path) -> None:
        # The function's settings (MemorySize, Environment) come from the daemon's own config file.
        self.workers.append(
            worker(
                self.runtime,
                self.env,
                self.ports["fn"],
                "--config",
                str(config),
                "--function-name",
                "fn",
                "--concurrency",
                "4",
            )
        )
        self.workers.append(
            worker(
                self.runtime,
                self.env,
                self.ports["fn-init"],
                "--function-name",
                "fn-init",
                "--provisioned-concurrency",
                "0",
                "--env",
                "ESM_SCENARIO_INIT_FAIL=1",
                "--env",
                f"ESM_RECORDER_FILE={self.recorder}",
            )
        )
        for process in self.workers:
            process.wait_for_line(r"esm worker: serving", timeout=60)

    def stop(self) -> str:
        logs = []
        for process in self.workers:
            process.stop()
            logs.append(process.stderr)
        return "\n".join(logs)

    def failures(self, name: str) -> list[dict[str, Any]]:
        path = self.tmp_path / f"failures-{name}.jsonl"
        return read_all(self.destination(name)) if path.exists() else []

    def recorded_values(self) -> Iterator[tuple[str, str]]:
        """(source: topic or stream ARN, value) of every record every invocation saw."""
        for line in complete_lines(self.recorder):
            event = json.loads(line)
            for records in (event.get("records") or {}).values():
                for record in records:
                    yield record["topic"], base64.b64decode(record["value"]).decode()
            for record in event.get("Records") or ():
                yield record["eventSourceARN"], base64.b64decode(record["kinesis"]["data"]).decode()


def check(run: RuntimeRun, sources: dict[str, str], stderr: str) -> None:
    """Every scenario's outcome, by the records the handler saw and what reached each destination."""
    seen = list(run.recorded_values())
    # The function error is in the worker's log once per attempt (by the runtime or by the worker).
    logged = re.compile(r'ScenarioError: a record asked to fail|"errorType":\s*"ScenarioError"')
    error_lines = [line for line in stderr.splitlines() if logged.search(line)]
    assert len(error_lines) == SCENARIOS["error"].retries + 1, error_lines
    for name, scenario in SCENARIOS.items():
        failures = run.failures(name)
        error_type = run.runtime.init_error_type if name == "init" else scenario.error_type
        if name == "delivered":
            assert {v for s, v in seen if s == sources[name]} == set(scenario.values), stderr
            assert failures == []
        elif scenario.partial:
            [failure] = failures
            assert failure["responseContext"]["functionError"] is None
            assert "esm" not in failure
            assert _payload_values(failure) == {"partial", "ok-c"}, "retried from the failed record on"
        else:
            [failure] = failures
            assert failure["requestContext"]["approximateInvokeCount"] == scenario.retries + 1, failure
            assert failure["responseContext"]["functionError"] == "Unhandled"
            assert failure["esm"]["lastFunctionError"]["errorType"] == error_type, (
                name,
                failure,
                stderr[-3000:],
            )


def _payload_values(failure: dict[str, Any]) -> set[str]:
    payload = failure["payload"]
    values = set()
    for records in (payload.get("records") or {}).values():
        values |= {base64.b64decode(r["value"]).decode() for r in records}
    for record in payload.get("Records") or ():
        values.add(base64.b64decode(record["kinesis"]["data"]).decode())
    return values


def _mapping_settings(name: str, scenario: Scenario, run: RuntimeRun) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "MaximumRetryAttempts": scenario.retries,
        "MaximumRetryBackoffInSeconds": 1,
        "BatchSize": 10,
        "DestinationConfig": {"OnFailure": {"Destination": run.destination(name)}},
    }
    if scenario.partial:
        settings["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    return settings


def _all_settled(run: RuntimeRun, done: Callable[[str], bool]) -> Callable[[], bool]:
    def settled() -> bool:
        return all(done(name) for name in SCENARIOS)

    return settled


def test_kafka(runtime: Runtime, kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    run = RuntimeRun(runtime, tmp_path, {})
    topics = {name: new_topic(partitions=1) for name in SCENARIOS}
    mappings = [
        mapping(
            kafka_broker,
            topics[name],
            f"g-{topics[name]}",
            function=scenario.function,
            **_mapping_settings(name, scenario, run),
        )
        for name, scenario in SCENARIOS.items()
    ]
    config = write_config(tmp_path / "esm.json", run.functions(), mappings)
    run.start_workers(config)
    for name, scenario in SCENARIOS.items():
        produce(
            kafka_broker,
            topics[name],
            [OutgoingRecord(value=v.encode(), partition=0) for v in scenario.values],
        )
    engine = EsmProcess(["run", "-c", str(config)])
    try:

        def committed(name: str) -> bool:
            return sum(committed_offsets(kafka_broker, f"g-{topics[name]}", topics[name]).values()) >= len(
                SCENARIOS[name].values
            )

        wait_until(_all_settled(run, committed), timeout=90, message=lambda: engine.stderr[-3000:])
    finally:
        assert engine.stop() == 0, engine.stderr
        stderr = run.stop()
    check(run, topics, stderr)


def test_kinesis(runtime: Runtime, kinesis_mock: KinesisMock, tmp_path: Path) -> None:
    run = RuntimeRun(runtime, tmp_path, emulator_env(kinesis_mock))
    streams = {name: create_kinesis_stream(kinesis_mock, 1) for name in SCENARIOS}
    mappings = [
        kinesis_mapping(
            streams[name],
            str(uuid.uuid4()),
            FunctionName=scenario.function,
            **_mapping_settings(name, scenario, run),
        )
        for name, scenario in SCENARIOS.items()
    ]
    config = write_config(
        tmp_path / "esm.json", run.functions(), mappings, store=f"sqlite:///{tmp_path / 's.db'}"
    )
    run.start_workers(config)
    for name, scenario in SCENARIOS.items():
        put_records(streams[name], [("k", v.encode()) for v in scenario.values])
    engine = EsmProcess(["run", "-c", str(config)], env=emulator_env(kinesis_mock))
    arns = {name: stream.arn for name, stream in streams.items()}
    try:

        def settled(name: str) -> bool:
            if name == "delivered":
                return {v for s, v in run.recorded_values() if s == arns[name]} == set(SCENARIOS[name].values)
            return bool(run.failures(name))

        wait_until(_all_settled(run, settled), timeout=90, message=lambda: engine.stderr[-3000:])
    finally:
        assert engine.stop() == 0, engine.stderr
        stderr = run.stop()
    check(run, arns, stderr)
