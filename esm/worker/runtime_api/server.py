"""One environment's Runtime API endpoint: an HTTP server on 127.0.0.1 that hands invocations to
the runtime's `GET next` and takes back its response or error (the rules are in `rules`).

The worker's side is two futures: `initialised` (None once the runtime first asks for an
invocation, or the error it posted to init/error) and the result of each `hand_over`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from esm.wire import MAX_RESPONSE_BYTES
from esm.worker.function_error import FunctionError
from esm.worker.runtime_api.http import MAX_HEADER_BYTES, BadRequest, read_request, response_bytes
from esm.worker.runtime_api.rules import ERROR_TYPE_HEADER, Call, Decision, Phase, decide, route_of

_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Invocation:
    request_id: str
    deadline_epoch_ms: int
    invoked_function_arn: str
    trace_id: str
    payload: bytes

    def response(self) -> bytes:
        """`GET next`'s answer: the event, with the invocation's facts in Lambda's headers."""
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_epoch_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.invoked_function_arn,
            "Lambda-Runtime-Trace-Id": self.trace_id,
        }
        return response_bytes(200, self.payload, headers)


@dataclass(frozen=True)
class InvocationResult:
    """What the runtime posted for one invocation: its response body, or a function error."""

    response: bytes = b""
    error: FunctionError | None = None


class RuntimeApiServer:
    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._phase = Phase.INITIALIZING
        self._current_id = ""
        self._pending: Invocation | None = None
        self._parked: asyncio.Future[Invocation] | None = None
        self._result: asyncio.Future[InvocationResult] | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.initialised: asyncio.Future[FunctionError | None] = asyncio.get_running_loop().create_future()

    async def start(self) -> str:
        """Listen on a free loopback port; returns `host:port` for AWS_LAMBDA_RUNTIME_API."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEADER_BYTES)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def hand_over(self, invocation: Invocation) -> asyncio.Future[InvocationResult]:
        """Give the runtime its next invocation (now if a `next` waits, else at its next `next`)."""
        if self._waiting_for_result():
            raise RuntimeError("one invocation at a time: the previous one has no result yet")
        self._result = asyncio.get_running_loop().create_future()
        if self._parked is not None and not self._parked.done():
            self._parked.set_result(invocation)
        else:
            self._pending = invocation
        return self._result

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while (request := await read_request(reader, writer, MAX_RESPONSE_BYTES)) is not None:
                route, request_id = route_of(request.method, request.path)
                call = Call(
                    route, request_id, request.body, request.body_size, request.header(ERROR_TYPE_HEADER)
                )
                decision = decide(self._phase, self._current_id, call)
                self._apply(decision)
                if decision.park:
                    invocation = await self._wait_for_invocation(reader)
                    if invocation is None:
                        return  # the runtime hung up while waiting (or the server closes)
                    writer.write(invocation.response())
                else:
                    if decision.status >= 400:
                        what = f"{request.method} {request.path}"
                        self._log(f"Runtime API: {what}: {decision.status} {decision.body.decode()}")
                    writer.write(response_bytes(decision.status, decision.body, _JSON))
                await writer.drain()
                if not request.keep_alive:
                    return
        except BadRequest as exc:
            self._log(f"Runtime API: a malformed request: {exc}")
            body = orjson.dumps({"errorMessage": str(exc), "errorType": "InvalidRequestFormat"})
            with contextlib.suppress(ConnectionError):
                writer.write(response_bytes(400, body, _JSON))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    def _apply(self, decision: Decision) -> None:
        before, self._phase = self._phase, decision.phase
        if before is Phase.INITIALIZING and decision.phase is not before and not self.initialised.done():
            self.initialised.set_result(decision.error if decision.phase is Phase.INIT_FAILED else None)
        elif before is Phase.INVOKING and decision.phase is Phase.RESPONDED and self._waiting_for_result():
            assert self._result is not None
            self._result.set_result(InvocationResult(decision.response or b"", decision.error))

    def _waiting_for_result(self) -> bool:
        return self._result is not None and not self._result.done()

    async def _wait_for_invocation(self, reader: asyncio.StreamReader) -> Invocation | None:
        """The invocation to answer a parked `next` with, or None if the runtime hung up first
        (an invocation handed over meanwhile then waits for the runtime's next `next`)."""
        if self._pending is None:
            self._parked = asyncio.get_running_loop().create_future()
            # A runtime sends nothing while it waits: anything read here means it hung up.
            hang_up = asyncio.ensure_future(reader.read(1))
            try:
                await asyncio.wait((self._parked, hang_up), return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not hang_up.done():
                    hang_up.cancel()
                    # Wait until it let go of the reader, or the next read would find it busy.
                    await asyncio.wait((hang_up,))
            parked, self._parked = self._parked, None
            if parked.done():
                self._pending = parked.result()
            else:
                parked.cancel()
            if hang_up.done() and not hang_up.cancelled():
                self._phase = Phase.RESPONDED  # between invocations: a new `next` is welcome
                return None
        invocation, self._pending = self._pending, None
        assert invocation is not None
        self._phase = Phase.INVOKING
        self._current_id = invocation.request_id
        return invocation
