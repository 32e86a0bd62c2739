"""The spans of one batch: built only when `Tracing` is configured (the lane and the invoker take
None otherwise and build nothing).

    batch (root of its own trace: mapping, function, source, shard, first/last position, count)
      wait for concurrency   (the function's concurrency limit; one per attempt)
      invoke                 (one per attempt; its id is the handler's parent)
      retry backoff          (the wait before the next attempt)
      bisect                 (a failed item split in halves)
      destination write      (each attempt to hand records to the on-failure destination)
      checkpoint             (the lane's progress reported; fenced by ownership)

Spans are started with explicit parents, never through the ambient context, so concurrent lanes
on one event loop cannot mix up their traces.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.tracing.headers import TRACEPARENT_KEY, trace_parent

AttributeValue = str | int | float | bool

MAPPING_UUID = "esm.mapping.uuid"
FUNCTION = "faas.invoked_name"
SOURCE = "esm.source"
SHARD = "esm.shard"
LANE = "esm.lane"
FIRST_POSITION = "esm.batch.first_position"
LAST_POSITION = "esm.batch.last_position"
RECORD_COUNT = "esm.batch.record_count"
ATTEMPT = "esm.attempt"
OUTCOME = "esm.outcome"
REQUEST_ID = "faas.invocation_id"


class BatchTracing:
    """One mapping's tracer and the attributes every batch of it carries."""

    def __init__(self, tracer: trace.Tracer, mapping_uuid: str, function: str, source: str) -> None:
        self._tracer = tracer
        self._attributes: dict[str, AttributeValue] = {
            MAPPING_UUID: mapping_uuid,
            FUNCTION: function,
            SOURCE: source,
        }

    def start_batch(self, shard: str, lane: str, first: str, last: str, count: int) -> BatchTrace:
        attributes = {
            **self._attributes,
            SHARD: shard,
            LANE: lane,
            FIRST_POSITION: first,
            LAST_POSITION: last,
            RECORD_COUNT: count,
        }
        # An empty context: each batch is the root of a trace of its own.
        root = self._tracer.start_span(
            "batch", context=otel_context.Context(), kind=SpanKind.CONSUMER, attributes=attributes
        )
        return BatchTrace(self._tracer, root)


class BatchTrace:
    def __init__(self, tracer: trace.Tracer, root: Span) -> None:
        self._tracer = tracer
        self.root = root
        self._parent = trace.set_span_in_context(root)
        # A batch the sampler left out gets no child spans at all (they would not be recorded
        # either): its steps share the root's non-recording span, whose context says "not sampled".
        self._recording = root.is_recording()

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
        """A child of the batch span around the `with` block; an exception marks it as an error."""
        if not self._recording:
            yield self.root
            return
        span = self._tracer.start_span(name, context=self._parent, attributes=attributes)
        try:
            yield span
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            span.end()

    def event(self, name: str, attributes: Mapping[str, AttributeValue]) -> None:
        """A child span with no duration to speak of (a decision such as a bisect)."""
        if self._recording:
            self._tracer.start_span(name, context=self._parent, attributes=attributes).end()

    def attempt(self, attributes: Mapping[str, AttributeValue]) -> InvocationTrace:
        return InvocationTrace(self, attributes)

    def end(self, completed: bool) -> None:
        if not completed:
            self.root.set_attribute("esm.batch.abandoned", True)
        self.root.end()


class InvocationTrace:
    """The spans of one invocation attempt, as the invoker builds them."""

    def __init__(self, batch: BatchTrace, attributes: Mapping[str, AttributeValue]) -> None:
        self._batch = batch
        self._attributes = attributes
        self._span: Span | None = None

    @contextmanager
    def waiting(self) -> Iterator[Span]:
        with self._batch.span("wait for concurrency", self._attributes) as span:
            yield span

    @contextmanager
    def invoking(self) -> Iterator[tuple[tuple[str, str], ...]]:
        """The invocation span; yields the gRPC metadata that carries it to the worker."""
        with self._batch.span("invoke", self._attributes) as span:
            self._span = span
            context = span.get_span_context()
            parent = trace_parent(context.trace_id, context.span_id, context.trace_flags.sampled)
            yield ((TRACEPARENT_KEY, parent.header()),)

    def record(self, outcome: InvokeOutcome) -> None:
        """The attempt's outcome on its invocation span."""
        span = self._span
        if span is None:
            return
        span.set_attribute(OUTCOME, outcome.kind.value)
        if outcome.request_id:
            span.set_attribute(REQUEST_ID, outcome.request_id)
        if outcome.error is not None:
            span.set_attribute("esm.error_type", outcome.error.error_type)
        if outcome.kind is not OutcomeKind.SUCCESS:
            span.set_status(Status(StatusCode.ERROR, outcome.describe()))
