"""One environment's Runtime API endpoint: an HTTP server on 127.0.0.1 that hands invocations to
the runtime's `GET next` and takes back its response or error (the rules are in `rules`).

The worker's side is two futures: `initialised` (None once the runtime first asks for an
invocation, or the error it posted to init/error) and the result of each `hand_over`. Written
as an asyncio Protocol: a `next` that waits is answered from `hand_over` itself, and a runtime
that hangs up is noticed at once (its invocation then waits for its next `next`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from esm.wire import MAX_RESPONSE_BYTES
from esm.worker.function_error import FunctionError
from esm.worker.runtime_api.http import BadRequest, Request, RequestParser, response_bytes
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


class _Connection(asyncio.Protocol):
    """One runtime connection: requests are answered in order; one may wait (a parked `next`)."""

    def __init__(self, api: RuntimeApiServer) -> None:
        self._api = api
        self._parser = RequestParser(MAX_RESPONSE_BYTES)
        self._backlog: deque[Request] = deque()
        self.transport: asyncio.Transport | None = None
        self.waiting = False  # its `next` waits for an invocation

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._api.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            items = self._parser.feed(data)
        except BadRequest as exc:
            self._api.log(f"Runtime API: a malformed request: {exc}")
            body = orjson.dumps({"errorMessage": str(exc), "errorType": "InvalidRequestFormat"})
            self.send(response_bytes(400, body, _JSON), keep_alive=False)
            return
        for item in items:
            if isinstance(item, bytes):
                self.send(item)  # 100 Continue
            else:
                self._backlog.append(item)
        self.serve_backlog()

    def serve_backlog(self) -> None:
        """Answer the requests read so far, in order, until one has to wait."""
        while self._backlog and not self.waiting and self.transport is not None:
            self._api.handle(self, self._backlog.popleft())

    def send(self, data: bytes, keep_alive: bool = True) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._api.connections.discard(self)
        self._api.hung_up(self)


class RuntimeApiServer:
    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.connections: set[_Connection] = set()
        self._phase = Phase.INITIALIZING
        self._current_id = ""
        self._pending: Invocation | None = None
        self._parked: _Connection | None = None
        self._parked_keep_alive = True
        self._result: asyncio.Future[InvocationResult] | None = None
        self._server: asyncio.Server | None = None
        self.initialised: asyncio.Future[FunctionError | None] = asyncio.get_running_loop().create_future()

    async def start(self) -> str:
        """Listen on a free loopback port; returns `host:port` for AWS_LAMBDA_RUNTIME_API."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def hand_over(self, invocation: Invocation) -> asyncio.Future[InvocationResult]:
        """Give the runtime its next invocation (now if a `next` waits, else at its next `next`)."""
        if self._result is not None and not self._result.done():
            raise RuntimeError("one invocation at a time: the previous one has no result yet")
        self._result = asyncio.get_running_loop().create_future()
        self._pending = invocation
        if self._parked is not None:
            self._deliver(self._parked)
        return self._result

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            await self._server.wait_closed()

    def handle(self, connection: _Connection, request: Request) -> None:
        route, request_id = route_of(request.method, request.path)
        call = Call(route, request_id, request.body, request.body_size, request.header(ERROR_TYPE_HEADER))
        decision = decide(self._phase, self._current_id, call)
        self._apply(decision)
        if decision.park:
            connection.waiting = True
            self._parked, self._parked_keep_alive = connection, request.keep_alive
            if self._pending is not None:
                self._deliver(connection)
            return
        if decision.status >= 400:
            what = f"{request.method} {request.path}"
            self.log(f"Runtime API: {what}: {decision.status} {decision.body.decode()}")
        connection.send(response_bytes(decision.status, decision.body, _JSON), request.keep_alive)

    def hung_up(self, connection: _Connection) -> None:
        """A runtime closed a connection; if its `next` was waiting, a new `next` is welcome."""
        if connection is self._parked:
            self._parked = None
            self._phase = Phase.RESPONDED

    def _deliver(self, connection: _Connection) -> None:
        invocation, self._pending = self._pending, None
        assert invocation is not None
        self._parked = None
        self._phase = Phase.INVOKING
        self._current_id = invocation.request_id
        connection.waiting = False
        connection.send(invocation.response(), self._parked_keep_alive)
        connection.serve_backlog()

    def _apply(self, decision: Decision) -> None:
        before, self._phase = self._phase, decision.phase
        if before is Phase.INITIALIZING and decision.phase is not before and not self.initialised.done():
            self.initialised.set_result(decision.error if decision.phase is Phase.INIT_FAILED else None)
        elif (
            before is Phase.INVOKING
            and decision.phase is Phase.RESPONDED
            and self._result is not None
            and not self._result.done()
        ):
            self._result.set_result(InvocationResult(decision.response or b"", decision.error))
