"""A lane's spans with `Tracing` on: one trace per batch, its steps as children of the batch span
(spans kept in memory by the OpenTelemetry SDK; the integration test exports them for real)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from esm.dispatch.outcomes import InvokeOutcome
from esm.shard.failures import Backoff, FailurePolicy
from esm.tracing.batch import BatchTracing, InvocationTrace
from esm.tracing.headers import parse_traceparent

from .fakes import FakeSource, feed, shard_of
from .test_lane import PoisonInvoker, RecordingSink, run_until_checkpointed

POLICY = FailurePolicy(
    maximum_retry_attempts=1,
    bisect_on_function_error=True,
    function_error_backoff=Backoff(0.001, 0.001),
    transient_backoff=Backoff(0.001, 0.001),
)


class TracedPoisonInvoker(PoisonInvoker):
    """Builds the invocation's spans as the real invoker does, and keeps the metadata it would send."""

    def __init__(self, poison: int) -> None:
        super().__init__(poison)
        self.metadata: list[tuple[tuple[str, str], ...]] = []

    async def invoke(self, payload: bytes, trace: InvocationTrace | None = None) -> InvokeOutcome:
        assert trace is not None
        with trace.waiting():
            pass
        with trace.invoking() as metadata:
            self.metadata.append(metadata)
            outcome = await super().invoke(payload)
            trace.record(outcome)
        return outcome


def tracing(provider: TracerProvider) -> BatchTracing:
    return BatchTracing(provider.get_tracer("test"), "uuid-1", "fn", "kafka://b:9092/t")


async def traced_run(provider: TracerProvider, records: list[int], batch: int) -> TracedPoisonInvoker:
    source, invoker, sink = FakeSource(), TracedPoisonInvoker(poison=5), RecordingSink()
    shard = shard_of(source, invoker, batch=batch, policy=POLICY, sink=sink)
    for lane in shard.lanes:
        lane.services = replace(lane.services, tracing=tracing(provider))
    feed(shard, records)
    await run_until_checkpointed(shard, source, records[-1])
    return invoker


def by_trace(spans: Sequence[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        assert span.context is not None
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


async def test_each_batch_is_a_trace_with_its_steps_as_children() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    invoker = await traced_run(provider, list(range(10)), batch=8)
    traces = by_trace(exporter.get_finished_spans())
    assert len(traces) == 2  # [0..7] with the poison record, then [8, 9]
    for spans in traces.values():
        roots = [span for span in spans if span.parent is None]
        assert [root.name for root in roots] == ["batch"]
        root = roots[0]
        assert root.context is not None
        assert all(
            span.parent is not None and span.parent.span_id == root.context.span_id
            for span in spans
            if span is not root
        )
    poisoned = next(spans for spans in traces.values() if len(spans) > 4)
    root = next(span for span in poisoned if span.name == "batch")
    assert dict(root.attributes or {}) == {
        "esm.mapping.uuid": "uuid-1",
        "faas.invoked_name": "fn",
        "esm.source": "kafka://b:9092/t",
        "esm.shard": "t-0",
        "esm.lane": "t-0",
        "esm.batch.first_position": "offset 0",
        "esm.batch.last_position": "offset 7",
        "esm.batch.record_count": 8,
    }
    names = Counter(span.name for span in poisoned)
    # [0..7] fails, is bisected three times down to [5], which fails twice (one retry) and goes
    # to the destination; every item's success and the given-up record are checkpointed.
    assert names["bisect"] == 3
    assert names["retry backoff"] == 1
    assert names["destination write"] == 1
    assert names["invoke"] == names["wait for concurrency"] == len(invoker.batches) - 1
    assert names["checkpoint"] >= 4
    failed = [s for s in poisoned if s.name == "invoke" and (s.attributes or {})["esm.outcome"] != "success"]
    assert {s.attributes["esm.batch.record_count"] for s in failed if s.attributes} == {8, 4, 2, 1}
    # What goes to the worker names the invocation span as the parent.
    invoke_ids = {s.context.span_id for s in poisoned if s.name == "invoke" and s.context}
    parents = [parse_traceparent(dict(m)["traceparent"]) for m in invoker.metadata]
    assert invoke_ids <= {int(p.span_id, 16) for p in parents if p is not None}


async def test_an_unsampled_batch_exports_nothing_and_says_so_downstream() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    invoker = await traced_run(provider, [1, 2], batch=2)
    assert exporter.get_finished_spans() == ()
    parent = parse_traceparent(dict(invoker.metadata[0])["traceparent"])
    assert parent is not None and not parent.sampled
