"""The worker's handle on one execution environment process: start it, send it invocations, end it."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from esm.worker import function_error
from esm.worker.function_error import FunctionError
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.protocol import REPLY_HEADER, Reply, ReplyKind, parse_reply_header, request_header

ENVIRONMENT_MODULE = "esm.worker.environment_main"
# How long a process that closed its channel gets to finish exiting before it is killed.
EXIT_AFTER_EOF_S = 2.0


class EnvironmentInitError(Exception):
    """The environment could not import the handler (or died before saying it was ready)."""

    def __init__(self, error: FunctionError) -> None:
        super().__init__(f"{error.error_type}: {error.error_message}")
        self.error = error


class EnvironmentTimedOut(Exception):
    """The invocation ran past its timeout; the environment must be killed."""


class EnvironmentExited(Exception):
    """The environment process ended (or broke the protocol) mid-invocation."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"environment exited: {function_error.describe_exit(returncode)}")
        self.returncode = returncode


class ExecutionEnvironment:
    """One process running one invocation at a time; its module state lives as long as it does.

    Not safe for concurrent invoke() calls: the pool hands each environment to one caller at a time.
    """

    def __init__(self, environment_id: int, handler: str, python: str = sys.executable) -> None:
        self.environment_id = environment_id
        self._handler = handler
        self._python = python
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, init_timeout_s: float) -> None:
        """Spawn the process and wait until the handler is imported; EnvironmentInitError otherwise."""
        # A new session keeps a terminal's Ctrl-C away from the environments: the worker decides
        # when they stop, after in-flight invocations finish.
        self._process = await asyncio.create_subprocess_exec(
            self._python,
            "-u",
            "-m",
            ENVIRONMENT_MODULE,
            self._handler,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(init_timeout_s):
                reply = await self._read_reply()
        except asyncio.CancelledError:
            await self.kill()  # the pool is closing while this one boots: leave no orphan
            raise
        except TimeoutError:
            await self.kill()
            raise EnvironmentInitError(
                FunctionError("Runtime.InitTimeout", f"handler import took longer than {init_timeout_s:g} s")
            ) from None
        except EnvironmentExited as exc:
            raise EnvironmentInitError(
                FunctionError(
                    function_error.EXIT_ERROR,
                    f"environment exited before it was ready: {function_error.describe_exit(exc.returncode)}",
                )
            ) from exc
        if reply.kind is ReplyKind.INIT_ERROR:
            await self.wait_exit()
            raise EnvironmentInitError(FunctionError.from_json(reply.body))
        if reply.kind is not ReplyKind.READY:
            await self.kill()
            raise EnvironmentInitError(
                FunctionError(function_error.EXIT_ERROR, f"environment sent {reply.kind.name} before READY")
            )

    async def invoke(self, meta: InvocationMeta, payload: bytes) -> Reply:
        """Run one invocation; EnvironmentTimedOut past meta.timeout_ms, EnvironmentExited if it died."""
        process = self._running()
        assert process.stdin is not None
        meta_json = meta.to_json()
        try:
            async with asyncio.timeout(meta.timeout_ms / 1000):
                try:
                    process.stdin.writelines((request_header(meta_json, payload), meta_json, payload))
                    await process.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    raise EnvironmentExited(await self.wait_exit()) from None
                reply = await self._read_reply()
        except TimeoutError:
            raise EnvironmentTimedOut() from None
        if reply.kind not in (ReplyKind.RESULT, ReplyKind.FUNCTION_ERROR):
            await self.kill()
            raise EnvironmentExited(self._process.returncode if self._process else None)
        return reply

    async def kill(self) -> None:
        """SIGKILL the process (a timed-out handler gets no say) and reap it."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

    async def stop(self, grace_s: float) -> None:
        """Close the channel so the process exits on its own; kill it if it has not within grace_s."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(grace_s):
                await process.wait()
        except TimeoutError:
            await self.kill()

    async def wait_exit(self) -> int | None:
        process = self._process
        if process is None:
            return None
        return await process.wait()

    def _running(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError(f"environment {self.environment_id} was never started")
        return self._process

    async def _read_reply(self) -> Reply:
        process = self._running()
        assert process.stdout is not None
        try:
            header = await process.stdout.readexactly(REPLY_HEADER.size)
            kind, duration_us, body_length = parse_reply_header(header)
            body = await process.stdout.readexactly(body_length) if body_length else b""
        except asyncio.IncompleteReadError:
            raise EnvironmentExited(await self._reap_after_eof()) from None
        except ValueError:
            await self.kill()  # garbage on the channel: this process is done for
            raise EnvironmentExited(process.returncode) from None
        return Reply(kind, duration_us, body)

    async def _reap_after_eof(self) -> int | None:
        """The exit status of a process that closed its channel (it is exiting, or wedged).

        Not killed straight away: signalling a process that already exited makes asyncio's
        subprocess reap it itself, and the real exit status would be lost (reported as 255).
        """
        process = self._running()
        try:
            async with asyncio.timeout(EXIT_AFTER_EOF_S):
                return await process.wait()
        except TimeoutError:
            await self.kill()
            return process.returncode
