"""A gRPC client of a worker process for the worker tests (the `client_for` fixture makes them)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from esm._proto.esm.v1 import function_pb2, function_pb2_grpc

FAST_TIMEOUT_MS = 300
# gRPC clients accept 4 MB replies by default; the engine's invoker raises it the same way.
CLIENT_OPTIONS = [("grpc.max_receive_message_length", 8 * 1024 * 1024)]


class Client:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.stub = function_pb2_grpc.FunctionWorkerStub(channel)  # type: ignore[no-untyped-call]

    async def invoke(
        self,
        event: Any,
        timeout_ms: int = FAST_TIMEOUT_MS,
        request_id: str | None = None,
        metadata: tuple[tuple[str, str], ...] | None = None,
        **fields: Any,
    ) -> function_pb2.InvokeResponse:
        request = function_pb2.InvokeRequest(
            request_id=request_id or str(uuid.uuid4()),
            timeout_ms=timeout_ms,
            payload=orjson.dumps(event),
            **fields,
        )
        response: function_pb2.InvokeResponse = await self.stub.Invoke(request, timeout=30, metadata=metadata)
        return response

    async def health(self, service: str) -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        status: int = response.status
        return status


def result_of(response: function_pb2.InvokeResponse) -> Any:
    assert not response.HasField("error"), response.error
    return orjson.loads(response.payload)
