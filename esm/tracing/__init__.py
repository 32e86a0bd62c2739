"""Tracing (OpenTelemetry): one trace per batch, exported over OTLP/HTTP, and the trace context
handed to the function as Lambda hands X-Ray's."""
