"""EnvironmentPool's claiming, replacement and reporting, with environments faked by a tiny subclass."""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

import pytest

from esm.worker.environment import (
    EnvironmentExited,
    EnvironmentInitError,
    EnvironmentTimedOut,
    ExecutionEnvironment,
)
from esm.worker.function_error import FunctionError
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.lambda_environment import ON_DEMAND, PROVISIONED
from esm.worker.metrics import WorkerMetrics
from esm.worker.observer import InvocationObserver
from esm.worker.output import LogSink
from esm.worker.pool import EnvironmentPool
from esm.worker.protocol import Reply, ReplyKind

META = InvocationMeta("req-1", "f", "$LATEST", "arn", timeout_ms=300, memory_limit_mb=128)


class FakeSandbox:
    def __init__(self, environment_id: int, initialization_type: str) -> None:
        self.environment_id = environment_id
        self.initialization_type = initialization_type
        self.exited = False

        self.output: list[str] = []

    def peak_mb(self) -> int:
        return 42

    def output_mentions(self, *texts: str) -> bool:
        return any(all(text in line for text in texts) for line in self.output)


class FakeEnvironment(ExecutionEnvironment):
    """Answers with its own id; `script` says what the next invoke() does."""

    def __init__(
        self, environment_id: int, initialization_type: str, script: list[str], boot: asyncio.Event
    ) -> None:
        super().__init__(FakeSandbox(environment_id, initialization_type))  # type: ignore[arg-type]
        self.initialization_type = initialization_type
        self._script = script
        self._boot = boot
        self.killed = False

    @property
    def exited(self) -> bool:
        return bool(self.sandbox.exited)

    async def start(self, init_timeout_s: float) -> None:
        await self._boot.wait()
        if self._script and self._script[0] == "init-fails":
            self._script.pop(0)
            raise EnvironmentInitError(FunctionError("Runtime.ImportModuleError", "gone"))
        self.init_duration_ms = 12.5

    async def invoke(self, meta: InvocationMeta, payload: bytes) -> Reply:
        self.invocations += 1
        step = self._script.pop(0) if self._script else "ok"
        if step == "timeout":
            raise EnvironmentTimedOut()
        if step == "exit":
            raise EnvironmentExited(-11)
        if step == "oom":
            raise EnvironmentExited(-9, out_of_memory=True)
        if step == "error":
            error = FunctionError(
                "ValueError", "boom", ['  File "app.py", line 3, in handler\n    raise x\n']
            )
            return Reply(ReplyKind.FUNCTION_ERROR, 5, error.to_json())
        return Reply(ReplyKind.RESULT, 5, str(self.environment_id).encode())

    async def kill(self) -> None:
        self.killed = True

    async def stop(self, grace_s: float) -> None:
        self.killed = True


class Harness:
    def __init__(self, size: int, provisioned: int | None = None) -> None:
        self.script: list[str] = []
        self.boot = asyncio.Event()
        self.boot.set()
        self.created: list[FakeEnvironment] = []
        self.log: list[str] = []
        self._log_file = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the harness)
        self.metrics = WorkerMetrics()
        observer = InvocationObserver(
            LogSink(self._log_file.fileno(), clock=lambda: 1_700_000_000.0), self.metrics
        )
        self.pool = EnvironmentPool(
            self._make, size, log=self.log.append, observer=observer, provisioned=provisioned
        )

    def _make(self, environment_id: int, initialization_type: str) -> FakeEnvironment:
        environment = FakeEnvironment(environment_id, initialization_type, self.script, self.boot)
        self.created.append(environment)
        return environment

    def lines(self) -> list[str]:
        self._log_file.seek(0)
        return self._log_file.read().decode().splitlines()

    def metric(self, name: str, **labels: Any) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def start(self) -> None:
        await self.pool.start_first()
        await self.pool.start_rest()


async def test_claims_are_exclusive_and_all_busy_means_none() -> None:
    harness = Harness(size=2)
    await harness.start()
    first, second = harness.pool.try_claim(), harness.pool.try_claim()
    assert first is not None and second is not None and first is not second
    assert harness.pool.try_claim() is None
    await harness.pool.invoke(first, META, b"{}")
    assert harness.pool.try_claim() is first


async def test_a_timeout_is_reported_and_the_environment_replaced_with_a_new_id() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.script.append("timeout")
    slot = harness.pool.try_claim()
    assert slot is not None
    outcome = await harness.pool.invoke(slot, META, b"{}")
    assert outcome.error is not None and outcome.error.error_type == "Sandbox.Timedout"
    assert (outcome.environment_id, outcome.duration_us) == (1, 300_000)

    again = harness.pool.try_claim()  # the replacement may still be starting: the claim waits for it
    assert again is slot
    next_outcome = await harness.pool.invoke(again, META, b"{}")
    assert (next_outcome.environment_id, next_outcome.payload) == (2, b"2")
    assert harness.created[0].killed


async def test_an_exit_is_an_exit_error_naming_the_signal() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.script.append("exit")
    slot = harness.pool.try_claim()
    assert slot is not None
    outcome = await harness.pool.invoke(slot, META, b"{}")
    assert outcome.error is not None
    assert outcome.error.error_type == "Runtime.ExitError"
    assert outcome.error.error_message.endswith("signal: segmentation fault")


async def test_a_ready_environment_is_preferred_to_one_still_starting() -> None:
    harness = Harness(size=2)
    await harness.start()
    harness.script.append("timeout")
    harness.boot.clear()  # the replacement will hang in start()
    slot = harness.pool.try_claim()
    assert slot is not None
    await harness.pool.invoke(slot, META, b"{}")
    other = harness.pool.try_claim()
    assert other is not None and other is not slot
    starting = harness.pool.try_claim()
    assert starting is slot, "with the ready one taken, the starting one is claimed (a cold start)"
    pending = asyncio.create_task(harness.pool.invoke(starting, META, b"{}"))
    await asyncio.sleep(0)
    assert not pending.done()
    harness.boot.set()
    assert (await pending).payload == b"3"


async def test_a_replacement_that_cannot_start_fails_one_call_then_is_retried() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.script.extend(["timeout", "init-fails"])
    slot = harness.pool.try_claim()
    assert slot is not None
    await harness.pool.invoke(slot, META, b"{}")

    failed = await harness.pool.invoke(harness.pool.try_claim() or slot, META, b"{}")
    assert failed.error is not None and failed.error.error_type == "Runtime.ImportModuleError"
    retried = await harness.pool.invoke(harness.pool.try_claim() or slot, META, b"{}")
    assert (retried.error, retried.payload) == (None, b"3")


async def test_the_first_environment_reports_a_handler_that_cannot_be_imported() -> None:
    harness = Harness(size=2)
    harness.script.append("init-fails")
    with pytest.raises(EnvironmentInitError, match="ImportModuleError"):
        await harness.pool.start_first()
    assert len(harness.created) == 1, "no other environment is started for a broken handler"


async def test_close_stops_every_environment() -> None:
    harness = Harness(size=3)
    await harness.start()
    await harness.pool.close()
    assert all(environment.killed for environment in harness.created)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        Harness(size=0)


def test_provisioned_cannot_pass_the_size() -> None:
    with pytest.raises(ValueError, match="between 0 and the concurrency 2, got 3"):
        Harness(size=2, provisioned=3)


async def invoke_once(harness: Harness, request_id: str = "req-1") -> Any:
    slot = harness.pool.try_claim()
    assert slot is not None
    meta = InvocationMeta(request_id, "f", "$LATEST", "arn", timeout_ms=300, memory_limit_mb=256)
    return await harness.pool.invoke(slot, meta, b"{}")


async def test_provisioned_environments_start_first_and_the_rest_on_demand() -> None:
    harness = Harness(size=3, provisioned=1)
    await harness.start()
    assert [(e.environment_id, e.initialization_type) for e in harness.created] == [(1, PROVISIONED)]
    assert harness.metric("esm_worker_environments_alive") == 1
    first = harness.pool.try_claim()
    second = harness.pool.try_claim()  # no environment yet: started for this invocation
    assert first is not None and second is not None
    meta = InvocationMeta("r2", "f", "$LATEST", "arn", timeout_ms=300, memory_limit_mb=128)
    outcome = await harness.pool.invoke(second, meta, b"{}")
    assert outcome.payload == b"2"
    assert [(e.environment_id, e.initialization_type) for e in harness.created][1] == (2, ON_DEMAND)
    assert harness.metric("esm_worker_cold_starts_total") == 1
    assert harness.metric("esm_worker_init_duration_seconds_count", initialization_type=ON_DEMAND) == 1
    assert harness.metric("esm_worker_init_duration_seconds_count", initialization_type=PROVISIONED) == 1


async def test_no_environment_before_serving_with_zero_provisioned() -> None:
    harness = Harness(size=2, provisioned=0)
    await harness.start()
    assert harness.created == []
    assert (await invoke_once(harness)).payload == b"1"


async def test_start_end_report_for_a_cold_start() -> None:
    harness = Harness(size=1)
    await harness.start()
    await invoke_once(harness, "req-1")
    await invoke_once(harness, "req-2")
    start, end, report, start2, end2, report2 = harness.lines()
    assert (start, end) == ("START RequestId: req-1 Version: $LATEST", "END RequestId: req-1")
    fields = report.split("\t")
    assert fields[0] == "REPORT RequestId: req-1"
    assert fields[1].startswith("Duration: ") and fields[1].endswith(" ms")
    assert fields[3:] == ["Memory Size: 256 MB", "Max Memory Used: 42 MB", "Init Duration: 12.50 ms"]
    assert "Init Duration" not in report2, "only the first invocation of an environment is a cold start"
    assert (start2, end2) == ("START RequestId: req-2 Version: $LATEST", "END RequestId: req-2")
    assert harness.metric("esm_worker_invocations_total", outcome="success") == 2


async def test_a_provisioned_environment_reports_no_init_duration() -> None:
    harness = Harness(size=1, provisioned=1)
    await harness.start()
    await invoke_once(harness)
    assert "Init Duration" not in harness.lines()[2]
    assert harness.metric("esm_worker_cold_starts_total") == 0


async def test_a_function_error_is_logged_once_with_its_trace_before_end() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.script.append("error")
    outcome = await invoke_once(harness, "req-9")
    assert outcome.kind == "function_error"
    lines = harness.lines()
    assert lines[1:4] == [
        "2023-11-14T22:13:20.000Z\treq-9\t[ERROR] ValueError: boom",
        "2023-11-14T22:13:20.000Z\treq-9\tTraceback (most recent call last):",
        '2023-11-14T22:13:20.000Z\treq-9\t  File "app.py", line 3, in handler',
    ]
    assert lines[5] == "END RequestId: req-9"
    assert sum("[ERROR]" in line for line in lines) == 1


async def test_an_error_the_runtime_logged_itself_is_not_logged_again() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.created[0].sandbox.output = ["[ERROR] ValueError: boom"]  # as awslambdaric logs it
    harness.script.append("error")
    await invoke_once(harness)
    assert not any("[ERROR]" in line for line in harness.lines())


@pytest.mark.parametrize(
    ("step", "kind", "status"),
    [
        ("timeout", "timeout", "Status: timeout"),
        ("exit", "runtime_exit", "Status: error\tError Type: Runtime.ExitError"),
        ("oom", "out_of_memory", "Status: error\tError Type: Runtime.OutOfMemory"),
    ],
)
async def test_platform_errors_say_so_in_report(step: str, kind: str, status: str) -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.script.append(step)
    outcome = await invoke_once(harness)
    assert outcome.kind == kind
    assert harness.lines()[-1].endswith(status)
    assert harness.metric("esm_worker_invocations_total", outcome=kind) == 1


async def test_out_of_memory_is_lambdas_error() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.script.append("oom")
    outcome = await invoke_once(harness, "req-m")
    assert outcome.error == FunctionError(
        "Runtime.OutOfMemory", "RequestId: req-m Error: Runtime exited with error: signal: killed"
    )


async def test_an_environment_that_died_while_idle_is_replaced_before_the_invocation() -> None:
    harness = Harness(size=1)
    await harness.start()
    harness.created[0].sandbox.exited = True
    outcome = await invoke_once(harness)
    assert (outcome.error, outcome.payload) == (None, b"2")
    assert any("ended while idle" in line for line in harness.log)
