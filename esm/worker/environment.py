"""The worker's handle on one execution environment: start it, send it invocations, end it.

Two kinds share one life (`ExecutionEnvironment`): `PythonEnvironment`, esm's own Python runtime
over a framed pipe (the fast path for `esm worker HANDLER`), and `BootstrapEnvironment`
(`bootstrap_environment`), any runtime speaking Lambda's Runtime API. Either way the process
lives in a `Sandbox` and runs one invocation at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from esm.worker import function_error
from esm.worker.function_error import FunctionError
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.protocol import REPLY_HEADER, Reply, ReplyKind, parse_reply_header, request_header
from esm.worker.sandbox import Sandbox

ENVIRONMENT_MODULE = "esm.worker.environment_main"
# How long a process that closed its channel gets to finish exiting before it is killed.
EXIT_AFTER_EOF_S = 2.0
INIT_TIMEOUT_TYPE = "Runtime.InitTimeout"


class EnvironmentInitError(Exception):
    """The environment could not initialise (init error, exit or timeout before it was ready)."""

    def __init__(self, error: FunctionError) -> None:
        super().__init__(f"{error.error_type}: {error.error_message}")
        self.error = error


class EnvironmentTimedOut(Exception):
    """The invocation ran past its timeout; the environment must be killed."""


class EnvironmentExited(Exception):
    """The environment process ended (or broke the protocol) mid-invocation."""

    def __init__(self, returncode: int | None, out_of_memory: bool = False) -> None:
        super().__init__(f"environment exited: {function_error.describe_exit(returncode)}")
        self.returncode = returncode
        self.out_of_memory = out_of_memory


class ExecutionEnvironment:
    """What both kinds share: the sandbox, init timing, ending. Not safe for concurrent invoke()
    calls: the pool hands each environment to one caller at a time."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.environment_id = sandbox.environment_id
        self.init_duration_ms = 0.0
        self.invocations = 0

    @property
    def exited(self) -> bool:
        return self.sandbox.exited

    async def start(self, init_timeout_s: float) -> None:
        """Start the process and wait until its runtime is ready; EnvironmentInitError otherwise."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(init_timeout_s):
                await self._initialise()
        except asyncio.CancelledError:
            await self.kill()  # the pool is closing while this one boots: leave no orphan
            raise
        except TimeoutError:
            await self.kill()
            raise EnvironmentInitError(
                FunctionError(INIT_TIMEOUT_TYPE, f"init took longer than {init_timeout_s:g} s")
            ) from None
        except EnvironmentInitError:
            await self.kill()
            raise
        self.init_duration_ms = (time.perf_counter() - started) * 1000

    async def invoke(self, meta: InvocationMeta, payload: bytes) -> Reply:
        """Run one invocation; EnvironmentTimedOut past meta.timeout_ms, EnvironmentExited if it died."""
        self.invocations += 1
        self.sandbox.invocation_started(meta.request_id)
        try:
            async with asyncio.timeout(meta.timeout_ms / 1000):
                return await self._run(meta, payload)
        except TimeoutError:
            raise EnvironmentTimedOut() from None
        finally:
            self.sandbox.drain_output()

    async def kill(self) -> None:
        """SIGKILL it (a timed-out handler gets no say), reap it, release what it held."""
        await self.sandbox.kill()
        await self.sandbox.release()

    async def stop(self, grace_s: float) -> None:
        """Ask the process to end; kill it if it has not within grace_s."""
        process = self.sandbox.process
        if process is not None and process.returncode is None:
            self._ask_to_stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await process.wait()
        await self.kill()

    async def exit_status(self) -> int | None:
        process = self.sandbox.process
        return None if process is None else await process.wait()

    async def _exited_error(self) -> EnvironmentExited:
        """The process ended: its status, and whether it went over its memory limit."""
        returncode = await self._reap_after_eof()
        return EnvironmentExited(returncode, out_of_memory=self.sandbox.out_of_memory())

    async def _reap_after_eof(self) -> int | None:
        """The exit status of a process that closed its channel (it is exiting, or wedged)."""
        process = self.sandbox.process
        if process is None:
            return None
        try:
            async with asyncio.timeout(EXIT_AFTER_EOF_S):
                return await process.wait()
        except TimeoutError:
            await self.sandbox.kill()
            return process.returncode

    async def _initialise(self) -> None:
        raise NotImplementedError

    async def _run(self, meta: InvocationMeta, payload: bytes) -> Reply:
        raise NotImplementedError

    def _ask_to_stop(self) -> None:
        raise NotImplementedError


class PythonEnvironment(ExecutionEnvironment):
    """esm's Python runtime (`environment_main`) over the framed pipe of `protocol`."""

    def __init__(self, sandbox: Sandbox, handler: str, python: str = sys.executable) -> None:
        super().__init__(sandbox)
        self._handler = handler
        self._python = python

    async def _initialise(self) -> None:
        await self.sandbox.spawn(
            [self._python, "-u", "-m", ENVIRONMENT_MODULE, self._handler], channel_stdio=True
        )
        try:
            reply = await self._read_reply()
        except EnvironmentExited as exc:
            raise EnvironmentInitError(
                FunctionError(
                    function_error.EXIT_ERROR,
                    f"environment exited before it was ready: {function_error.describe_exit(exc.returncode)}",
                )
            ) from exc
        if reply.kind is ReplyKind.INIT_ERROR:
            raise EnvironmentInitError(FunctionError.from_json(reply.body))
        if reply.kind is not ReplyKind.READY:
            raise EnvironmentInitError(
                FunctionError(function_error.EXIT_ERROR, f"environment sent {reply.kind.name} before READY")
            )

    async def _run(self, meta: InvocationMeta, payload: bytes) -> Reply:
        process = self._process()
        assert process.stdin is not None
        meta_json = meta.to_json()
        try:
            process.stdin.writelines((request_header(meta_json, payload), meta_json, payload))
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._exited_error() from None
        reply = await self._read_reply()
        if reply.kind not in (ReplyKind.RESULT, ReplyKind.FUNCTION_ERROR):
            await self.sandbox.kill()
            raise EnvironmentExited(process.returncode)
        return reply

    def _ask_to_stop(self) -> None:
        stdin = self._process().stdin
        if stdin is not None:
            stdin.close()  # the environment exits when its channel closes

    def _process(self) -> asyncio.subprocess.Process:
        if self.sandbox.process is None:
            raise RuntimeError(f"environment {self.environment_id} was never started")
        return self.sandbox.process

    async def _read_reply(self) -> Reply:
        process = self._process()
        assert process.stdout is not None
        try:
            header = await process.stdout.readexactly(REPLY_HEADER.size)
            kind, duration_us, body_length = parse_reply_header(header)
            body = await process.stdout.readexactly(body_length) if body_length else b""
        except asyncio.IncompleteReadError:
            raise await self._exited_error() from None
        except ValueError:
            await self.sandbox.kill()  # garbage on the channel: this process is done for
            raise EnvironmentExited(process.returncode) from None
        return Reply(kind, duration_us, body)
