"""Trace context in the forms it crosses process boundaries (pure: no OpenTelemetry import).

W3C `traceparent` travels from the daemon to the worker in the gRPC metadata; the worker turns it
into X-Ray's header for the handler (`_X_AMZN_TRACE_ID`, `Lambda-Runtime-Trace-Id`), mapped as the
OpenTelemetry AWS X-Ray propagator maps it: the trace id's first 8 hex digits are X-Ray's epoch
part, the other 24 its random part; the parent is the invocation span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRACEPARENT_KEY = "traceparent"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_SAMPLED_FLAG = 0x01


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    """32 lowercase hex digits."""
    span_id: str
    """16 lowercase hex digits: the span the callee's work is a child of."""
    sampled: bool

    def header(self) -> str:
        """The W3C `traceparent` value."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def xray(self) -> str:
        """X-Ray's trace header, as Lambda puts it in `_X_AMZN_TRACE_ID`."""
        trace_id = self.trace_id
        return f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={self.span_id};Sampled={int(self.sampled)}"


def trace_parent(trace_id: int, span_id: int, sampled: bool) -> TraceParent:
    """From OpenTelemetry's integer ids."""
    return TraceParent(f"{trace_id:032x}", f"{span_id:016x}", sampled)


def parse_traceparent(value: str) -> TraceParent | None:
    """The W3C header's version-00 form; None when it is malformed or names the all-zero ids
    (the caller then runs the invocation without a trace context)."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceParent(trace_id, span_id, bool(int(flags, 16) & _SAMPLED_FLAG))
