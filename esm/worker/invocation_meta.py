"""What an execution environment needs to know about one invocation, besides the event bytes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson

# Lambda's defaults, used when a request leaves a field empty.
DEFAULT_TIMEOUT_MS = 3000
DEFAULT_MEMORY_MB = 128
DEFAULT_VERSION = "$LATEST"


@dataclass(frozen=True)
class InvocationMeta:
    request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    timeout_ms: int
    memory_limit_mb: int
    # The daemon's trace context when it traces (empty otherwise): W3C traceparent, and the same
    # in X-Ray's form for _X_AMZN_TRACE_ID and Lambda-Runtime-Trace-Id.
    traceparent: str = ""
    xray_trace_header: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> InvocationMeta:
        return cls(**orjson.loads(data))
