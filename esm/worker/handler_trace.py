"""The batch's trace around a Python handler call, as Lambda's runtime sets X-Ray's.

`_X_AMZN_TRACE_ID` is set in the environment for the invocation (removed when the daemon sent no
trace context, so a stale one never lingers), and the W3C context is made OpenTelemetry's current
context: a span the handler starts with the OpenTelemetry API, under whatever tracer provider it
sets up, is a child of the daemon's invocation span. Nothing is imported without a trace context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from esm.tracing.headers import TRACEPARENT_KEY
from esm.worker.invocation_meta import InvocationMeta

XRAY_ENV = "_X_AMZN_TRACE_ID"


@contextmanager
def handler_trace(meta: InvocationMeta) -> Iterator[None]:
    if not meta.traceparent:
        os.environ.pop(XRAY_ENV, None)
        yield
        return
    os.environ[XRAY_ENV] = meta.xray_trace_header
    try:
        from opentelemetry import context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:  # a runtime without the OpenTelemetry API: the environment variable only
        yield
        return
    token = context.attach(TraceContextTextMapPropagator().extract({TRACEPARENT_KEY: meta.traceparent}))
    try:
        yield
    finally:
        context.detach(token)
