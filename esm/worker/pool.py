"""The pool of execution environments: claim one per invocation, replace the ones that break.

Each slot holds at most one environment and is claimed by at most one invocation at a time,
so the number of invocations in flight never exceeds the pool size and a handler's module
state is never seen by two invocations at once. A slot is, at any moment:

    ready (idle environment) --claim--> busy --done--> ready
    busy --timed out / exited--> starting (replacement spawning) --claim--> busy (waits for it)
    starting --replacement failed to import--> empty --claim--> busy (spawns, waits)

A claim prefers a ready slot, then a starting one (a cold start, as Lambda would do), then an
empty one; when every slot is busy the caller is throttled.
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
from esm.worker.protocol import ReplyKind

# Lambda allows 10 s for a function's init phase.
INIT_TIMEOUT_S = 10.0
STOP_GRACE_S = 2.0

EnvironmentFactory = Callable[[int], ExecutionEnvironment]


@dataclass(frozen=True)
class InvocationOutcome:
    """What the handler produced: its JSON result, or a function error."""

    environment_id: int
    duration_us: int
    payload: bytes = b""
    error: FunctionError | None = None


@dataclass(eq=False)
class Slot:
    environment: ExecutionEnvironment | None = None
    starting: asyncio.Task[ExecutionEnvironment] | None = None
    busy: bool = False


class EnvironmentPool:
    def __init__(
        self,
        factory: EnvironmentFactory,
        size: int,
        log: Callable[[str], None],
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError(f"concurrency must be at least 1, got {size}")
        self._factory = factory
        self._log = log
        self._init_timeout_s = init_timeout_s
        self._slots = [Slot() for _ in range(size)]
        self._next_id = itertools.count(1)

    @property
    def size(self) -> int:
        return len(self._slots)

    async def start_first(self) -> None:
        """Start one environment: this is where a handler that cannot be imported is found."""
        self._slots[0].environment = await self._spawn()

    async def start_rest(self) -> None:
        """Start the other environments in parallel; EnvironmentInitError if any cannot start."""
        rest = self._slots[1:]
        started = await asyncio.gather(*(self._spawn() for _ in rest), return_exceptions=True)
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
            if slot.environment is not None:
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
        try:
            try:
                environment = await self._ready_environment(slot)
            except EnvironmentInitError as exc:
                return InvocationOutcome(environment_id=0, duration_us=0, error=exc.error)
            return await self._invoke_in(slot, environment, meta, payload)
        finally:
            slot.busy = False

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
            return InvocationOutcome(env_id, meta.timeout_ms * 1000, error=error)
        except EnvironmentExited as exc:
            self._log(f"environment {env_id} exited ({meta.request_id}): {exc}; replacing it")
            self._replace(slot)
            error = function_error.exited(meta.request_id, exc.returncode)
            return InvocationOutcome(env_id, int((time.perf_counter() - started) * 1_000_000), error=error)
        except asyncio.CancelledError:
            # Its state is unknown now (a request may be half-written): do not reuse it.
            self._replace(slot)
            raise
        if reply.kind is ReplyKind.FUNCTION_ERROR:
            return InvocationOutcome(env_id, reply.duration_us, error=FunctionError.from_json(reply.body))
        if len(reply.body) > MAX_RESPONSE_BYTES:
            error = FunctionError(RESPONSE_TOO_LARGE, response_too_large_message(len(reply.body)))
            return InvocationOutcome(env_id, reply.duration_us, error=error)
        return InvocationOutcome(env_id, reply.duration_us, payload=reply.body)

    async def close(self) -> None:
        """Stop every environment (each gets STOP_GRACE_S to exit after its channel closes)."""
        stops = []
        for slot in self._slots:
            if slot.starting is not None:
                slot.starting.cancel()
                with contextlib.suppress(asyncio.CancelledError, EnvironmentInitError):
                    slot.environment = await slot.starting
                slot.starting = None
            if slot.environment is not None:
                stops.append(slot.environment.stop(STOP_GRACE_S))
                slot.environment = None
        await asyncio.gather(*stops)

    async def _ready_environment(self, slot: Slot) -> ExecutionEnvironment:
        if slot.environment is not None:
            return slot.environment
        if slot.starting is None:
            slot.starting = asyncio.create_task(self._spawn())
        try:
            slot.environment = await slot.starting
        except EnvironmentInitError as exc:
            self._log(f"an environment failed to start, the invocation gets its init error: {exc}")
            raise
        finally:
            slot.starting = None
        return slot.environment

    def _replace(self, slot: Slot) -> None:
        """Kill the slot's environment and start a fresh one in the background."""
        old = slot.environment
        slot.environment = None
        slot.starting = asyncio.create_task(self._respawn(old))
        # A replacement nobody waits for must not end as "exception never retrieved".
        slot.starting.add_done_callback(_consume_exception)

    async def _respawn(self, old: ExecutionEnvironment | None) -> ExecutionEnvironment:
        if old is not None:
            await old.kill()
        return await self._spawn()

    async def _spawn(self) -> ExecutionEnvironment:
        environment = self._factory(next(self._next_id))
        await environment.start(self._init_timeout_s)
        return environment


def _consume_exception(task: asyncio.Task[ExecutionEnvironment]) -> None:
    if not task.cancelled():
        task.exception()
