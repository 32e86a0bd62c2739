"""The FunctionWorker gRPC service: admit or refuse a call, run it in the pool, answer in-band.

gRPC statuses mean the function did not run (RESOURCE_EXHAUSTED with the busy marker of
`esm.wire`: every environment busy; UNAVAILABLE: draining); whatever the handler did, including
timing out or crashing, is an OK response with `error` set.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from esm._proto.esm.v1 import function_pb2, function_pb2_grpc
from esm.tracing.headers import TRACEPARENT_KEY, TraceParent, parse_traceparent
from esm.wire import BUSY_METADATA_KEY, BUSY_METADATA_VALUE
from esm.worker.invocation_meta import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, DEFAULT_VERSION, InvocationMeta
from esm.worker.pool import EnvironmentPool, InvocationOutcome, Slot
from esm.worker.stats import InvocationStats, write_stats_file

SERVICE_NAME = "esm.v1.FunctionWorker"


@dataclass(frozen=True)
class InvocationDefaults:
    """Fill-ins for request fields left empty: the function's name and the region of its ARN, the
    timeout; and the MemorySize the worker enforces, which is what the handler is told."""

    function_name: str
    region: str
    timeout_ms: int | None = None
    memory_mb: int | None = None

    def meta_for(
        self, request: function_pb2.InvokeRequest, metadata: Sequence[tuple[str, str | bytes]] = ()
    ) -> InvocationMeta:
        name = request.function_name or self.function_name
        parent = _trace_parent(metadata)
        return InvocationMeta(
            request_id=request.request_id or str(uuid.uuid4()),
            function_name=name,
            function_version=request.function_version or DEFAULT_VERSION,
            invoked_function_arn=request.invoked_function_arn
            or f"arn:aws:lambda:{self.region}:000000000000:function:{name}",
            timeout_ms=request.timeout_ms or self.timeout_ms or DEFAULT_TIMEOUT_MS,
            memory_limit_mb=self.memory_mb or request.memory_limit_mb or DEFAULT_MEMORY_MB,
            traceparent="" if parent is None else parent.header(),
            xray_trace_header="" if parent is None else parent.xray(),
        )


def _trace_parent(metadata: Sequence[tuple[str, str | bytes]]) -> TraceParent | None:
    """The caller's W3C trace context (a tracing daemon sends it; any gRPC client may)."""
    for key, value in metadata:
        if key == TRACEPARENT_KEY and isinstance(value, str):
            return parse_traceparent(value)
    return None


def response_from(outcome: InvocationOutcome) -> function_pb2.InvokeResponse:
    response = function_pb2.InvokeResponse(
        duration_us=outcome.duration_us, environment_id=outcome.environment_id
    )
    if outcome.error is None:
        response.payload = outcome.payload
    else:
        response.error.error_type = outcome.error.error_type
        response.error.error_message = outcome.error.error_message
        response.error.stack_trace.extend(outcome.error.stack_trace)
    return response


class FunctionWorkerService(function_pb2_grpc.FunctionWorkerServicer):
    def __init__(
        self,
        pool: EnvironmentPool,
        defaults: InvocationDefaults,
        stats: InvocationStats,
        stats_file: Path | None,
    ) -> None:
        self._pool = pool
        self._defaults = defaults
        self._stats = stats
        self._stats_file = stats_file
        self._draining = False
        self._in_flight: set[asyncio.Task[InvocationOutcome]] = set()

    async def Invoke(  # the RPC's name
        self, request: function_pb2.InvokeRequest, context: Any
    ) -> function_pb2.InvokeResponse:
        if self._draining:
            context.set_code(grpc.StatusCode.UNAVAILABLE)
            context.set_details("the worker is shutting down")
            return function_pb2.InvokeResponse()
        slot = self._pool.try_claim()
        if slot is None:
            context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)
            context.set_details(f"all {self._pool.size} execution environments are busy")
            context.set_trailing_metadata(((BUSY_METADATA_KEY, BUSY_METADATA_VALUE),))
            return function_pb2.InvokeResponse()
        self._stats.started()
        meta = self._defaults.meta_for(request, context.invocation_metadata() or ())
        task = asyncio.create_task(self._run(slot, meta, request.payload))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        # Shielded: a caller that gives up (deadline, cancel) does not cut the handler short; the
        # environment stays busy until the handler finishes or times out, as in Lambda.
        return response_from(await asyncio.shield(task))

    async def drain(self) -> None:
        """Refuse new calls from now on and wait for those in flight (each bounded by its timeout)."""
        self._draining = True
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def _run(self, slot: Slot, meta: InvocationMeta, payload: bytes) -> InvocationOutcome:
        try:
            return await self._pool.invoke(slot, meta, payload)
        finally:
            self._stats.finished()
            if self._stats_file is not None:
                write_stats_file(self._stats_file, self._stats)
