"""The daemon's tracer provider: OTLP/HTTP protobuf to `<Endpoint>/v1/traces`, batched export."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from esm.config.tracing import TracingConfig

TRACER_NAME = "esm"
# A stopping daemon waits at most this long for its last spans to reach the collector.
SHUTDOWN_FLUSH_MILLIS = 5000


def traces_url(endpoint: str) -> str:
    """The collector's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT) -> its traces path."""
    return endpoint.rstrip("/") + "/v1/traces"


def start_provider(config: TracingConfig) -> TracerProvider:
    """A provider of its own (never the global one: a handler or library may set that)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.ServiceName}),
        sampler=ParentBased(TraceIdRatioBased(config.SampleRatio)),
    )
    exporter = OTLPSpanExporter(endpoint=traces_url(config.Endpoint), timeout=10)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    return provider


def stop_provider(provider: TracerProvider) -> None:
    """Sends what is still buffered, then stops the export thread."""
    provider.force_flush(SHUTDOWN_FLUSH_MILLIS)
    provider.shutdown()
