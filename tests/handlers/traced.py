"""A handler that takes part in the batch's trace, as an instrumented Lambda function would.

It starts a span of its own with the OpenTelemetry API under a tracer provider it sets up itself
(exporting to ESM_TEST_OTLP_ENDPOINT when set), and returns what it saw: `_X_AMZN_TRACE_ID` and
the ids of its span and of that span's parent. With ESM_RECORDER_FILE set it appends the same
as one JSON line per invocation; a Kafka record whose value is `fail` makes it raise afterwards.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

_provider = TracerProvider(resource=Resource.create({"service.name": "traced-handler"}))
if os.environ.get("ESM_TEST_OTLP_ENDPOINT"):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    _provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=os.environ["ESM_TEST_OTLP_ENDPOINT"] + "/v1/traces"))
    )
_tracer = _provider.get_tracer("traced-handler")


def handler(event: Any, context: Any) -> dict[str, Any]:
    with _tracer.start_as_current_span("handler work") as span:
        own = span.get_span_context()
        parent = span.parent  # type: ignore[attr-defined]
        seen = {
            "xray": os.environ.get("_X_AMZN_TRACE_ID"),
            "trace_id": f"{own.trace_id:032x}",
            "span_id": f"{own.span_id:016x}",
            "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        }
    if os.environ.get("ESM_RECORDER_FILE"):
        with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
            out.write(json.dumps(seen) + "\n")
    values = [base64.b64decode(r["value"]) for rs in (event.get("records") or {}).values() for r in rs]
    if b"fail" in values:
        raise ValueError("a record asked to fail")
    return seen
