"""The invoker against real gRPC servers on loopback: tiny FunctionWorker implementations that
answer as scripted, so each row of the status table runs over a real transport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from prometheus_client import CollectorRegistry

from esm._proto.esm.v1 import function_pb2, function_pb2_grpc
from esm.dispatch.endpoints import EndpointPool
from esm.dispatch.invoker import FunctionIdentity, FunctionInvoker
from esm.dispatch.limiter import ConcurrencyLimiter, LocalLimiter, UnlimitedLimiter
from esm.dispatch.outcomes import OutcomeKind
from esm.metrics import Metrics
from esm.netutil import free_port
from esm.wire import BUSY_METADATA_KEY, BUSY_METADATA_VALUE, MAX_RESPONSE_BYTES


class Busy:
    """RESOURCE_EXHAUSTED with the busy marker, as `esm worker` answers when every environment is busy."""


BUSY = Busy()


Answer = function_pb2.InvokeResponse | grpc.StatusCode | Busy
Start = Callable[[Callable[[function_pb2.InvokeRequest], Answer]], Awaitable[tuple[str, "ScriptedWorker"]]]


class ScriptedWorker(function_pb2_grpc.FunctionWorkerServicer):  # type: ignore[misc]
    def __init__(self, answer: Callable[[function_pb2.InvokeRequest], Answer]) -> None:
        self.answer = answer
        self.requests: list[function_pb2.InvokeRequest] = []

    async def Invoke(
        self, request: function_pb2.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> function_pb2.InvokeResponse:
        self.requests.append(request)
        answer = self.answer(request)
        if isinstance(answer, Busy):
            context.set_trailing_metadata(((BUSY_METADATA_KEY, BUSY_METADATA_VALUE),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "all 1 execution environments are busy")
        if isinstance(answer, grpc.StatusCode):
            await context.abort(answer, f"scripted {answer.name}")
        return answer


@pytest.fixture
async def start_worker() -> AsyncIterator[Start]:
    servers: list[grpc.aio.Server] = []

    async def start(answer: Callable[[function_pb2.InvokeRequest], Answer]) -> tuple[str, ScriptedWorker]:
        server = grpc.aio.server()
        worker = ScriptedWorker(answer)
        function_pb2_grpc.add_FunctionWorkerServicer_to_server(worker, server)
        address = f"127.0.0.1:{free_port()}"
        server.add_insecure_port(address)
        await server.start()
        servers.append(server)
        return address, worker

    yield start
    for server in servers:
        await server.stop(0)


def make_invoker(
    addresses: list[str], limiter: ConcurrencyLimiter | None = None
) -> tuple[FunctionInvoker, Metrics]:
    metrics = Metrics(CollectorRegistry())
    pool = EndpointPool(addresses, time.monotonic)
    return FunctionInvoker(
        FunctionIdentity("orders", 3.0), pool, limiter or UnlimitedLimiter(), metrics
    ), metrics


def ok(request: function_pb2.InvokeRequest) -> Answer:
    return function_pb2.InvokeResponse(payload=b'{"ok":true}', duration_us=5)


def raising(request: function_pb2.InvokeRequest) -> Answer:
    return function_pb2.InvokeResponse(
        error=function_pb2.FunctionError(
            error_type="ValueError", error_message="boom", stack_trace=["line 1"]
        )
    )


def timed_out(request: function_pb2.InvokeRequest) -> Answer:
    return function_pb2.InvokeResponse(
        error=function_pb2.FunctionError(
            error_type="Sandbox.Timedout", error_message="Task timed out after 3.00 seconds"
        )
    )


def too_large(request: function_pb2.InvokeRequest) -> Answer:
    return function_pb2.InvokeResponse(payload=b'"' + b"x" * MAX_RESPONSE_BYTES + b'"')


async def test_a_response_over_6_mb_is_lambdas_function_error(start_worker: Start) -> None:
    address, _ = await start_worker(too_large)
    invoker, _ = make_invoker([address])
    outcome = await invoker.invoke(b"{}")
    assert outcome.kind is OutcomeKind.FUNCTION_ERROR
    assert outcome.error is not None
    assert outcome.error.error_type == "Function.ResponseSizeTooLarge"
    assert f"({MAX_RESPONSE_BYTES + 2} bytes)" in outcome.error.error_message


async def test_a_grpc_message_limit_is_a_failed_attempt_not_a_throttle(start_worker: Start) -> None:
    address, worker = await start_worker(lambda r: grpc.StatusCode.RESOURCE_EXHAUSTED)
    invoker, metrics = make_invoker([address])
    outcome = await invoker.invoke(b"{}")
    assert outcome.kind.function_ran
    assert outcome.error is not None and outcome.error.error_type == "esm.GrpcMessageTooLarge"
    assert metrics.throttles.labels("orders")._value.get() == 0
    assert len(worker.requests) == 1


async def test_success_carries_the_response_and_the_request_fields(start_worker: Start) -> None:
    address, worker = await start_worker(ok)
    invoker, _ = make_invoker([address])
    outcome = await invoker.invoke(b'{"records":{}}')
    assert outcome.kind is OutcomeKind.SUCCESS
    assert outcome.response == b'{"ok":true}'
    request = worker.requests[0]
    assert request.payload == b'{"records":{}}'
    assert request.function_name == "orders"
    assert request.timeout_ms == 3000
    assert request.invoked_function_arn.endswith(":function:orders")
    assert len(request.request_id) == 36


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (raising, OutcomeKind.FUNCTION_ERROR),
        (timed_out, OutcomeKind.TIMEOUT),
        (lambda r: BUSY, OutcomeKind.THROTTLED),
        # Without the busy marker it is gRPC's message limit: the function may have run.
        (lambda r: grpc.StatusCode.RESOURCE_EXHAUSTED, OutcomeKind.FUNCTION_ERROR),
        (too_large, OutcomeKind.FUNCTION_ERROR),
        (lambda r: grpc.StatusCode.UNAVAILABLE, OutcomeKind.UNREACHABLE),
        (lambda r: grpc.StatusCode.INTERNAL, OutcomeKind.UNREACHABLE),
    ],
)
async def test_outcome_by_answer(
    start_worker: Start, answer: Callable[[function_pb2.InvokeRequest], Answer], kind: OutcomeKind
) -> None:
    address, _ = await start_worker(answer)
    invoker, metrics = make_invoker([address])
    outcome = await invoker.invoke(b"{}")
    assert outcome.kind is kind
    assert metrics.invocations.labels("orders", kind.value)._value.get() == 1


async def test_function_error_keeps_lambdas_error_fields(start_worker: Start) -> None:
    address, _ = await start_worker(raising)
    invoker, _ = make_invoker([address])
    outcome = await invoker.invoke(b"{}")
    assert outcome.error is not None
    assert (outcome.error.error_type, outcome.error.error_message, outcome.error.stack_trace) == (
        "ValueError",
        "boom",
        ("line 1",),
    )


async def test_a_dead_endpoint_is_skipped(start_worker: Start) -> None:
    address, worker = await start_worker(ok)
    dead = f"127.0.0.1:{free_port()}"
    invoker, _ = make_invoker([dead, address])
    outcomes = [await invoker.invoke(b"{}") for _ in range(4)]
    assert all(o.kind is OutcomeKind.SUCCESS for o in outcomes)
    assert len(worker.requests) == 4


async def test_a_busy_endpoint_sends_the_call_to_the_next(start_worker: Start) -> None:
    busy, _ = await start_worker(lambda r: BUSY)
    free, worker = await start_worker(ok)
    invoker, _ = make_invoker([busy, free])
    assert (await invoker.invoke(b"{}")).kind is OutcomeKind.SUCCESS
    assert len(worker.requests) == 1


async def test_no_endpoint_answering_is_unreachable() -> None:
    invoker, _ = make_invoker([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"])
    outcome = await invoker.invoke(b"{}")
    assert outcome.kind is OutcomeKind.UNREACHABLE
    assert "UNAVAILABLE" in outcome.detail


async def test_waiting_for_a_permit_counts_a_throttle(start_worker: Start) -> None:
    address, _ = await start_worker(ok)
    limiter = LocalLimiter(1)
    invoker, metrics = make_invoker([address], limiter)
    held = await limiter.acquire()
    waiting = asyncio.create_task(invoker.invoke(b"{}"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # no room: backpressure, not an error
    await held.release()
    assert (await waiting).kind is OutcomeKind.SUCCESS
    assert metrics.throttles.labels("orders")._value.get() == 1
