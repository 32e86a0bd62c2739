"""The pool of execution environments: claim one per invocation, replace the ones that break.

Each slot holds at most one environment and is claimed by at most one invocation at a time,
so the number of invocations in flight never exceeds the pool size and a handler's module
state is never seen by two invocations at once. A slot is, at any moment:

    ready (idle environment) --claim--> busy --done--> ready
    busy --timed out / exited--> starting (replacement spawning) --claim--> busy (waits for it)
    empty (on demand, or a replacement failed to init) --claim--> busy (spawns, waits: a cold start)

A claim prefers a ready slot, then a starting one, then an empty one; when every slot is busy
the caller is throttled. `provisioned` slots are initialised before the worker serves (type
provisioned-concurrency); without it every slot is (type on-demand, esm's default), and with it
the other slots start on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from esm.wire import MAX_RESPONSE_BYTES, RESPONSE_TOO_LARGE, response_too_large_message
from esm.worker import function_error
from esm.worker.environment import (
    EnvironmentExited,
    EnvironmentInitError,
    EnvironmentTimedOut,
    ExecutionEnvironment,
)
from esm.worker.function_error import FunctionError
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.lambda_environment import ON_DEMAND, PROVISIONED
from esm.worker.observer import InvocationObserver, is_cold_start
from esm.worker.protocol import ReplyKind
from esm.worker.report import ReportFacts

# Lambda allows 10 s for a function's init phase.
INIT_TIMEOUT_S = 10.0
STOP_GRACE_S = 2.0

EnvironmentFactory = Callable[[int, str], ExecutionEnvironment]


@dataclass(frozen=True)
class InvocationOutcome:
    """What the handler produced: its JSON result, or a function error."""

    environment_id: int
    duration_us: int
    payload: bytes = b""
    error: FunctionError | None = None
    # The metric label: success, function_error, timeout, runtime_exit, out_of_memory, init_error.
    kind: str = "success"


@dataclass(eq=False)
class Slot:
    initialization_type: str = ON_DEMAND
    environment: ExecutionEnvironment | None = None
    starting: asyncio.Task[ExecutionEnvironment] | None = None
    busy: bool = False


class EnvironmentPool:
    def __init__(
        self,
        factory: EnvironmentFactory,
        size: int,
        log: Callable[[str], None],
        observer: InvocationObserver,
        provisioned: int | None = None,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError(f"concurrency must be at least 1, got {size}")
        if provisioned is not None and not 0 <= provisioned <= size:
            raise ValueError(
                f"provisioned concurrency must be between 0 and the concurrency {size}, got {provisioned}"
            )
        self._factory = factory
        self._log = log
        self._observer = observer
        self._init_timeout_s = init_timeout_s
        self.provisioned = size if provisioned is None else provisioned
        kind = ON_DEMAND if provisioned is None else PROVISIONED
        self._slots = [Slot(kind if i < self.provisioned else ON_DEMAND) for i in range(size)]
        self._next_id = itertools.count(1)

    @property
    def size(self) -> int:
        return len(self._slots)

    async def start_first(self) -> None:
        """Start one environment before the others: a runtime that cannot initialise is found here."""
        if self.provisioned:
            self._slots[0].environment = await self._spawn(self._slots[0].initialization_type)

    async def start_rest(self) -> None:
        """Start the other provisioned environments in parallel; EnvironmentInitError if one cannot."""
        rest = self._slots[1 : self.provisioned]
        started = await asyncio.gather(
            *(self._spawn(slot.initialization_type) for slot in rest), return_exceptions=True
        )
        # Keep the ones that did start, so close() stops them even when another failed.
        for slot, environment in zip(rest, started, strict=True):
            if isinstance(environment, ExecutionEnvironment):
                slot.environment = environment
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure

    def try_claim(self) -> Slot | None:
        """A slot for one invocation, or None when all are busy. Synchronous, so claims never race."""
        best: Slot | None = None
        for slot in self._slots:
            if slot.busy:
                continue
            if slot.environment is not None and not slot.environment.exited:
                best = slot
                break
            if best is None or (slot.starting is not None and best.starting is None):
                best = slot
        if best is not None:
            best.busy = True
        return best

    async def invoke(self, slot: Slot, meta: InvocationMeta, payload: bytes) -> InvocationOutcome:
        """Run one invocation in the claimed slot's environment and release the slot."""
        if not slot.busy:
            raise RuntimeError("invoke() needs a slot from try_claim()")
        self._observer.invocation_started(meta.request_id, meta.function_version)
        environment: ExecutionEnvironment | None = None
        first = False
        started = time.perf_counter()
        try:
            try:
                environment = await self._ready_environment(slot)
            except EnvironmentInitError as exc:
                outcome = InvocationOutcome(
                    environment_id=0, duration_us=0, error=exc.error, kind="init_error"
                )
            else:
                first = environment.invocations == 0
                started = time.perf_counter()  # Lambda's Duration leaves init out
                outcome = await self._invoke_in(slot, environment, meta, payload)
        finally:
            slot.busy = False
        cold = environment is not None and is_cold_start(slot.initialization_type, first)
        facts = ReportFacts(
            request_id=meta.request_id,
            duration_ms=(time.perf_counter() - started) * 1000,
            memory_size_mb=meta.memory_limit_mb,
            max_memory_used_mb=environment.sandbox.peak_mb() if environment is not None else 0,
            init_duration_ms=environment.init_duration_ms if cold and environment is not None else None,
            error_type=outcome.error.error_type if outcome.error is not None else None,
        )
        error = outcome.error
        # AWS's runtime clients log a function error themselves: log it once, not twice.
        if (
            error is not None
            and environment is not None
            and outcome.kind == "function_error"
            and environment.sandbox.output_mentions(error.error_type, error.error_message[:200])
        ):
            error = None
        self._observer.invocation_finished(facts, outcome.kind, error)
        return outcome

    async def _invoke_in(
        self, slot: Slot, environment: ExecutionEnvironment, meta: InvocationMeta, payload: bytes
    ) -> InvocationOutcome:
        env_id = environment.environment_id
        started = time.perf_counter()
        try:
            reply = await environment.invoke(meta, payload)
        except EnvironmentTimedOut:
            self._log(f"environment {env_id} timed out ({meta.request_id}); replacing it")
            self._replace(slot)
            error = function_error.timed_out(meta.request_id, meta.timeout_ms)
            return InvocationOutcome(env_id, meta.timeout_ms * 1000, error=error, kind="timeout")
        except EnvironmentExited as exc:
            why = "went over its memory limit" if exc.out_of_memory else "exited"
            self._log(f"environment {env_id} {why} ({meta.request_id}): {exc}; replacing it")
            self._replace(slot)
            error = function_error.exited(meta.request_id, exc.returncode, exc.out_of_memory)
            kind = "out_of_memory" if exc.out_of_memory else "runtime_exit"
            return InvocationOutcome(
                env_id, int((time.perf_counter() - started) * 1_000_000), error=error, kind=kind
            )
        except asyncio.CancelledError:
            # Its state is unknown now (a request may be half-written): do not reuse it.
            self._replace(slot)
            raise
        if reply.kind is ReplyKind.FUNCTION_ERROR:
            error = FunctionError.from_json(reply.body)
            return InvocationOutcome(env_id, reply.duration_us, error=error, kind="function_error")
        if len(reply.body) > MAX_RESPONSE_BYTES:
            error = FunctionError(RESPONSE_TOO_LARGE, response_too_large_message(len(reply.body)))
            return InvocationOutcome(env_id, reply.duration_us, error=error, kind="function_error")
        return InvocationOutcome(env_id, reply.duration_us, payload=reply.body)

    async def close(self) -> None:
        """Stop every environment (each gets STOP_GRACE_S to exit after it is asked to)."""
        stops = []
        for slot in self._slots:
            if slot.starting is not None:
                slot.starting.cancel()
                with contextlib.suppress(asyncio.CancelledError, EnvironmentInitError):
                    slot.environment = await slot.starting
                slot.starting = None
            if slot.environment is not None:
                stops.append(self._end(slot.environment, STOP_GRACE_S))
                slot.environment = None
        await asyncio.gather(*stops)

    async def _ready_environment(self, slot: Slot) -> ExecutionEnvironment:
        if slot.environment is not None and slot.environment.exited:
            # It ended between invocations: nobody was running in it, so nothing failed yet.
            self._log(f"environment {slot.environment.environment_id} ended while idle; replacing it")
            self._replace(slot)
        if slot.environment is not None:
            return slot.environment
        if slot.starting is None:
            slot.starting = asyncio.create_task(self._spawn(slot.initialization_type))
        try:
            slot.environment = await slot.starting
        except EnvironmentInitError as exc:
            self._log(f"an environment failed to start, the invocation gets its init error: {exc}")
            raise
        finally:
            slot.starting = None
        return slot.environment

    def _replace(self, slot: Slot) -> None:
        """End the slot's environment and start a fresh one in the background."""
        old = slot.environment
        slot.environment = None
        slot.starting = asyncio.create_task(self._respawn(old, slot.initialization_type))
        # A replacement nobody waits for must not end as "exception never retrieved".
        slot.starting.add_done_callback(_consume_exception)

    async def _respawn(
        self, old: ExecutionEnvironment | None, initialization_type: str
    ) -> ExecutionEnvironment:
        if old is not None:
            await self._end(old, None)
        return await self._spawn(initialization_type)

    async def _end(self, environment: ExecutionEnvironment, grace_s: float | None) -> None:
        if grace_s is None:
            await environment.kill()
        else:
            await environment.stop(grace_s)
        self._observer.environment_ended()

    async def _spawn(self, initialization_type: str) -> ExecutionEnvironment:
        environment = self._factory(next(self._next_id), initialization_type)
        await environment.start(self._init_timeout_s)
        self._observer.environment_started(initialization_type, environment.init_duration_ms)
        return environment


def _consume_exception(task: asyncio.Task[ExecutionEnvironment]) -> None:
    if not task.cancelled():
        task.exception()
