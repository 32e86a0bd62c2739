"""A function's worker endpoints: one gRPC channel each, least-in-flight choice, dead ones skipped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from esm._proto.esm.v1 import function_pb2_grpc
from esm.wire import GRPC_MAX_MESSAGE_BYTES

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
    # Reconnect to a restarted worker quickly instead of after grpc's default ~20 s backoff.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


@dataclass
class Endpoint:
    address: str
    stub: function_pb2_grpc.FunctionWorkerStub
    channel: grpc.aio.Channel
    in_flight: int = 0
    down_until: float = 0.0
    consecutive_failures: int = field(default=0)


class EndpointPool:
    """Chooses where the next invocation goes. Not thread-safe: one per event loop."""

    DOWN_INITIAL_SECONDS = 0.25
    DOWN_CAP_SECONDS = 5.0

    def __init__(
        self,
        addresses: Sequence[str],
        clock: Callable[[], float],
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """`credentials`: TLS to the workers (esm.dispatch.tls); None: plain gRPC."""
        self._clock = clock
        self.endpoints: list[Endpoint] = []
        for address in addresses:
            if credentials is None:
                channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
            stub = function_pb2_grpc.FunctionWorkerStub(channel)  # type: ignore[no-untyped-call]
            self.endpoints.append(Endpoint(address, stub, channel))

    def pick(self, exclude: Sequence[Endpoint] = ()) -> Endpoint | None:
        """The live endpoint with the fewest invocations in flight; if all are marked down, the one
        that comes back soonest (a probe). None when every endpoint was already tried."""
        now = self._clock()
        candidates = [e for e in self.endpoints if e not in exclude]
        if not candidates:
            return None
        live = [e for e in candidates if e.down_until <= now]
        if live:
            return min(live, key=lambda e: e.in_flight)
        return min(candidates, key=lambda e: e.down_until)

    def mark_down(self, endpoint: Endpoint) -> None:
        endpoint.consecutive_failures += 1
        backoff = min(
            self.DOWN_CAP_SECONDS, self.DOWN_INITIAL_SECONDS * 2 ** (endpoint.consecutive_failures - 1)
        )
        endpoint.down_until = self._clock() + backoff

    def mark_up(self, endpoint: Endpoint) -> None:
        endpoint.consecutive_failures = 0
        endpoint.down_until = 0.0

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.channel.close()
