"""Invokes a function over gRPC: concurrency permit, endpoint choice, and one `InvokeOutcome` per call.

gRPC status codes are translated through `_STATUS_TABLE`, never by message text. Function errors
come back in-band (status OK with `error` set) and are a different thing from transport errors:
only the former mean the function ran. RESOURCE_EXHAUSTED is a throttle only with the worker's busy
marker (trailing metadata, `esm.wire`); without it gRPC hit a message limit, a failed attempt.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from esm._proto.esm.v1 import function_pb2
from esm.dispatch.endpoints import Endpoint, EndpointPool
from esm.dispatch.limiter import ConcurrencyLimiter
from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.metrics import Metrics
from esm.wire import (
    BUSY_METADATA_KEY,
    BUSY_METADATA_VALUE,
    MAX_RESPONSE_BYTES,
    RESPONSE_TOO_LARGE,
    response_too_large_message,
)

if TYPE_CHECKING:
    from esm.tracing.batch import InvocationTrace

log = logging.getLogger(__name__)

# The worker reports a handler that ran past its Timeout with Lambda's error type.
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"
# gRPC refused a message over its size limit (either side): the call may well have run, so it is
# a failed attempt, never a throttle (a throttle is retried without counting, forever).
TRANSPORT_LIMIT_ERROR_TYPE = "esm.GrpcMessageTooLarge"
# Extra time on the gRPC deadline so the worker's own timeout (a clean function error) fires first.
DEADLINE_MARGIN_SECONDS = 2.0


Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _StatusRule:
    kind: OutcomeKind
    # The endpoint cannot take calls now: skip it for a while and try another one.
    mark_down: bool
    # Another endpoint may do better (the function did not run here).
    try_next: bool


# Keyed by (status, whether the worker marked the status as "every environment busy").
_STATUS_TABLE: dict[tuple[grpc.StatusCode, bool], _StatusRule] = {
    (grpc.StatusCode.UNAVAILABLE, False): _StatusRule(OutcomeKind.UNREACHABLE, mark_down=True, try_next=True),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, True): _StatusRule(
        OutcomeKind.THROTTLED, mark_down=False, try_next=True
    ),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, False): _StatusRule(
        OutcomeKind.FUNCTION_ERROR, mark_down=False, try_next=False
    ),
    (grpc.StatusCode.DEADLINE_EXCEEDED, False): _StatusRule(
        OutcomeKind.TIMEOUT, mark_down=False, try_next=False
    ),
    (grpc.StatusCode.UNIMPLEMENTED, False): _StatusRule(
        OutcomeKind.UNREACHABLE, mark_down=True, try_next=True
    ),
}
_DEFAULT_RULE = _StatusRule(OutcomeKind.UNREACHABLE, mark_down=False, try_next=False)


@dataclass(frozen=True)
class FunctionIdentity:
    name: str
    timeout_seconds: float
    memory_mb: int = 128
    version: str = "$LATEST"

    @property
    def arn(self) -> str:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "local"
        return f"arn:aws:lambda:{region}:000000000000:function:{self.name}"


class FunctionInvoker:
    def __init__(
        self,
        function: FunctionIdentity,
        endpoints: EndpointPool,
        limiter: ConcurrencyLimiter,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function = function
        self._endpoints = endpoints
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._arn = function.arn
        self._outcome_counters = {
            kind: metrics.invocations.labels(function.name, kind.value) for kind in OutcomeKind
        }
        self._duration = metrics.invocation_duration.labels(function.name)
        self._concurrent = metrics.concurrent_invocations.labels(function.name)
        self._throttles = metrics.throttles.labels(function.name)

    async def invoke(self, payload: bytes, trace: InvocationTrace | None = None) -> InvokeOutcome:
        """One invocation attempt. Waits for a concurrency permit first (counted as a throttle).
        With `trace` (tracing on) the wait and the call are spans, and the call carries the
        invocation span's context to the worker as `traceparent` metadata."""
        if trace is None:
            permit = await self._limiter.acquire()
        else:
            with trace.waiting() as waiting:
                permit = await self._limiter.acquire()
                waiting.set_attribute("esm.throttled", permit.waited)
        if permit.waited:
            self._throttles.inc()
        self._concurrent.inc()
        try:
            if trace is None:
                outcome = await self._call(payload)
            else:
                with trace.invoking() as metadata:
                    outcome = await self._call(payload, metadata)
                    trace.record(outcome)
        finally:
            self._concurrent.dec()
            await permit.release()
        self._outcome_counters[outcome.kind].inc()
        return outcome

    async def _call(self, payload: bytes, metadata: Metadata | None = None) -> InvokeOutcome:
        request_id = str(uuid.uuid4())
        request = function_pb2.InvokeRequest(
            request_id=request_id,
            function_name=self.function.name,
            function_version=self.function.version,
            invoked_function_arn=self._arn,
            timeout_ms=int(self.function.timeout_seconds * 1000),
            memory_limit_mb=self.function.memory_mb,
            payload=payload,
        )
        tried: list[Endpoint] = []
        last = InvokeOutcome(OutcomeKind.UNREACHABLE, detail="no endpoints")
        while (endpoint := self._endpoints.pick(exclude=tried)) is not None:
            tried.append(endpoint)
            started = self._clock()
            endpoint.in_flight += 1
            try:
                response = await endpoint.stub.Invoke(
                    request,
                    timeout=self.function.timeout_seconds + DEADLINE_MARGIN_SECONDS,
                    metadata=metadata,
                )
            except grpc.aio.AioRpcError as err:
                rule = _rule_for(err)
                if rule.mark_down:
                    self._endpoints.mark_down(endpoint)
                detail = f"{endpoint.address}: {err.code().name}: {err.details()}"
                if rule.kind is OutcomeKind.TIMEOUT:
                    last = InvokeOutcome(
                        OutcomeKind.TIMEOUT,
                        error=FunctionError(
                            TIMEOUT_ERROR_TYPE,
                            f"RequestId: {request_id} Error: no answer before the deadline ({detail})",
                        ),
                        duration_seconds=self._clock() - started,
                        request_id=request_id,
                    )
                elif rule.kind is OutcomeKind.FUNCTION_ERROR:
                    last = InvokeOutcome(
                        OutcomeKind.FUNCTION_ERROR,
                        error=FunctionError(TRANSPORT_LIMIT_ERROR_TYPE, f"RequestId: {request_id} {detail}"),
                        duration_seconds=self._clock() - started,
                        request_id=request_id,
                    )
                else:
                    last = InvokeOutcome(rule.kind, detail=detail, request_id=request_id)
                if not rule.try_next:
                    return last
                continue
            finally:
                endpoint.in_flight -= 1
            self._endpoints.mark_up(endpoint)
            duration = self._clock() - started
            self._duration.observe(duration)
            return _from_response(response, duration, request_id)
        return last


def _rule_for(err: grpc.aio.AioRpcError) -> _StatusRule:
    busy = err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and any(
        key == BUSY_METADATA_KEY and value == BUSY_METADATA_VALUE
        for key, value in err.trailing_metadata() or ()
    )
    return _STATUS_TABLE.get((err.code(), busy), _DEFAULT_RULE)


def _from_response(response: function_pb2.InvokeResponse, duration: float, request_id: str) -> InvokeOutcome:
    if not response.HasField("error") and len(response.payload) > MAX_RESPONSE_BYTES:
        # Lambda's 6 MB rule, whatever the worker let through.
        error = FunctionError(RESPONSE_TOO_LARGE, response_too_large_message(len(response.payload)))
        return InvokeOutcome(
            OutcomeKind.FUNCTION_ERROR, error=error, duration_seconds=duration, request_id=request_id
        )
    if response.HasField("error"):
        error = FunctionError(
            response.error.error_type, response.error.error_message, tuple(response.error.stack_trace)
        )
        kind = OutcomeKind.TIMEOUT if error.error_type == TIMEOUT_ERROR_TYPE else OutcomeKind.FUNCTION_ERROR
        return InvokeOutcome(kind, error=error, duration_seconds=duration, request_id=request_id)
    return InvokeOutcome.success(response.payload, duration, request_id)
