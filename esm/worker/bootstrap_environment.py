"""An execution environment whose runtime is a `bootstrap` speaking Lambda's Runtime API.

As Lambda starts a custom runtime: the bootstrap runs with no arguments in the task root, with
AWS_LAMBDA_RUNTIME_API naming this environment's own endpoint. Init ends at its first
`GET next` (or its `init/error`); each invocation ends at its response or error, when the
process exits, or at the timeout.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from esm.worker.environment import EnvironmentExited, EnvironmentInitError, ExecutionEnvironment
from esm.worker.function_error import EXIT_ERROR, FunctionError, describe_exit
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.protocol import Reply, ReplyKind
from esm.worker.runtime_api.server import Invocation, RuntimeApiServer
from esm.worker.sandbox import Sandbox

# Lambda's error type for a bootstrap it cannot run.
INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"


def new_trace_id(epoch_s: float) -> str:
    """An X-Ray trace header for Lambda-Runtime-Trace-Id (runtimes expose it as _X_AMZN_TRACE_ID)
    when the daemon sends no trace context (it does when `Tracing` is configured)."""
    return f"Root=1-{int(epoch_s):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class BootstrapEnvironment(ExecutionEnvironment):
    def __init__(
        self,
        sandbox: Sandbox,
        bootstrap: str,
        log: Callable[[str], None],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(sandbox)
        self._bootstrap = bootstrap
        self._log = log
        self._wall_clock = wall_clock
        self._api: RuntimeApiServer | None = None
        self._exit: asyncio.Future[int] | None = None

    async def _initialise(self) -> None:
        environment_id = self.environment_id
        self._api = RuntimeApiServer(lambda line: self._log(f"environment {environment_id}: {line}"))
        address = await self._api.start()
        try:
            process = await self.sandbox.spawn([self._bootstrap], channel_stdio=False, runtime_api=address)
        except OSError as exc:  # e.g. a shebang naming an interpreter that is not there
            raise EnvironmentInitError(
                FunctionError(INVALID_ENTRYPOINT, f"cannot start {self._bootstrap}: {exc.strerror or exc}")
            ) from exc
        self._exit = asyncio.ensure_future(process.wait())
        await asyncio.wait((self._api.initialised, self._exit), return_when=asyncio.FIRST_COMPLETED)
        if self._api.initialised.done():
            error = self._api.initialised.result()
            if error is not None:
                raise EnvironmentInitError(error)
            return
        raise EnvironmentInitError(
            FunctionError(
                EXIT_ERROR, f"Runtime exited before it was ready: {describe_exit(self._exit.result())}"
            )
        )

    async def _run(self, meta: InvocationMeta, payload: bytes) -> Reply:
        assert self._api is not None and self._exit is not None
        started_ns = time.perf_counter_ns()
        invocation = Invocation(
            request_id=meta.request_id,
            deadline_epoch_ms=int(self._wall_clock() * 1000) + meta.timeout_ms,
            invoked_function_arn=meta.invoked_function_arn,
            trace_id=meta.xray_trace_header or new_trace_id(self._wall_clock()),
            payload=payload,
        )
        result = self._api.hand_over(invocation)
        await asyncio.wait((result, self._exit), return_when=asyncio.FIRST_COMPLETED)
        duration_us = (time.perf_counter_ns() - started_ns) // 1000
        if not result.done():
            raise EnvironmentExited(self._exit.result(), out_of_memory=self.sandbox.out_of_memory())
        outcome = result.result()
        if outcome.error is not None:
            return Reply(ReplyKind.FUNCTION_ERROR, duration_us, outcome.error.to_json())
        return Reply(ReplyKind.RESULT, duration_us, outcome.response)

    def _ask_to_stop(self) -> None:
        # Lambda sends SIGTERM at shutdown (runtimes may clean up), then SIGKILL after a grace.
        process = self.sandbox.process
        if process is not None and process.returncode is None:
            process.terminate()

    async def kill(self) -> None:
        await super().kill()
        if self._api is not None:
            await self._api.close()
