"""EnvironmentPool's claiming and replacement, with environments faked by a tiny subclass."""

from __future__ import annotations

import asyncio

import pytest

from esm.worker.environment import (
    EnvironmentExited,
    EnvironmentInitError,
    EnvironmentTimedOut,
    ExecutionEnvironment,
)
from esm.worker.function_error import FunctionError
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.pool import EnvironmentPool
from esm.worker.protocol import Reply, ReplyKind

META = InvocationMeta("req-1", "f", "$LATEST", "arn", timeout_ms=300, memory_limit_mb=128)


class FakeEnvironment(ExecutionEnvironment):
    """Answers with its own id; `script` says what the next invoke() does."""

    def __init__(self, environment_id: int, script: list[str], boot: asyncio.Event) -> None:
        super().__init__(environment_id, "fake.handler")
        self._script = script
        self._boot = boot
        self.killed = False

    async def start(self, init_timeout_s: float) -> None:
        await self._boot.wait()
        if self._script and self._script[0] == "init-fails":
            self._script.pop(0)
            raise EnvironmentInitError(FunctionError("Runtime.ImportModuleError", "gone"))

    async def invoke(self, meta: InvocationMeta, payload: bytes) -> Reply:
        step = self._script.pop(0) if self._script else "ok"
        if step == "timeout":
            raise EnvironmentTimedOut()
        if step == "exit":
            raise EnvironmentExited(-11)
        return Reply(ReplyKind.RESULT, 5, str(self.environment_id).encode())

    async def kill(self) -> None:
        self.killed = True

    async def stop(self, grace_s: float) -> None:
        self.killed = True


class Harness:
    def __init__(self, size: int) -> None:
        self.script: list[str] = []
        self.boot = asyncio.Event()
        self.boot.set()
        self.created: list[FakeEnvironment] = []
        self.log: list[str] = []
        self.pool = EnvironmentPool(self._make, size, log=self.log.append)

    def _make(self, environment_id: int) -> FakeEnvironment:
        environment = FakeEnvironment(environment_id, self.script, self.boot)
        self.created.append(environment)
        return environment

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
        EnvironmentPool(lambda i: ExecutionEnvironment(i, "x.y"), 0, log=print)
