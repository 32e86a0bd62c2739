"""Tracing end to end: a real daemon and worker on a Kafka topic export their spans over OTLP/HTTP
to a real receiver in the test (protobuf ExportTraceServiceRequest decoded with opentelemetry-proto);
the handler sees the batch's trace and a span it starts joins it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from otlp_receiver import OtlpReceiver, span_tree

from esm.embedded.topics import OutgoingRecord, produce

from .harness import Worker, complete_lines, daemon, mapping, wait_committed, write_config

UUID = "6c1f0a52-3f9e-4a5f-9d57-2f2a3b8c9d10"
# Where the test also leaves the span tree it received (for a person to read), when set.
SPAN_TREE_OUT = "ESM_TEST_SPAN_TREE_OUT"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


def test_each_batch_is_a_trace_that_reaches_the_handler(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path, receiver: OtlpReceiver
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, [OutgoingRecord(value=v, partition=0) for v in (b"a", b"b", b"fail", b"c")])
    seen_file = tmp_path / "seen.jsonl"
    worker = Worker(
        "tests.handlers.traced:handler",
        env={"ESM_RECORDER_FILE": str(seen_file), "ESM_TEST_OTLP_ENDPOINT": receiver.endpoint},
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [{"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30}],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                UUID=UUID,
                BatchSize=4,
                BisectBatchOnFunctionError=True,
                MaximumRetryAttempts=1,
                MaximumRetryBackoffInSeconds=1,
                DestinationConfig={"OnFailure": {"Destination": f"file://{tmp_path / 'failed.jsonl'}"}},
            )
        ],
        Tracing={"Endpoint": receiver.endpoint, "SampleRatio": 1.0, "ServiceName": "esm-test"},
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 4)
    finally:
        assert engine.stop() == 0, engine.stderr  # a stopping daemon flushes its spans
        worker.stop()
    spans = receiver.received()
    tree = span_tree(spans)
    (tmp_path / "span-tree.txt").write_text(tree)
    if os.environ.get(SPAN_TREE_OUT):
        Path(os.environ[SPAN_TREE_OUT]).write_text(tree)

    daemon_spans = [s for s in spans if s.service == "esm-test"]
    roots = [s for s in daemon_spans if s.name == "batch"]
    assert roots and all(root.parent_span_id == "" for root in roots), tree
    assert len({root.trace_id for root in roots}) == len(roots)  # one trace per batch
    first = min(roots, key=lambda s: s.start_ns)
    assert first.attributes == {
        "esm.mapping.uuid": UUID,
        "faas.invoked_name": "fn",
        "esm.source": f"kafka://{kafka_broker}/{topic}",
        "esm.shard": first.attributes["esm.shard"],
        "esm.lane": first.attributes["esm.lane"],
        "esm.batch.first_position": "offset 0",
        "esm.batch.last_position": "offset 3",
        "esm.batch.record_count": 4,
    }, tree
    assert str(first.attributes["esm.shard"]).endswith("0") and topic in str(first.attributes["esm.shard"])

    in_first = [s for s in daemon_spans if s.trace_id == first.trace_id and s is not first]
    assert all(s.parent_span_id == first.span_id for s in in_first), tree
    names = [s.name for s in in_first]
    # [a, b, fail, c] fails; halves [a, b] ok and [fail, c] fails; [fail] fails, waits, fails again
    # and goes to the destination; [c] ok.
    assert names.count("bisect") == 2, tree
    assert names.count("retry backoff") == 1, tree
    assert names.count("destination write") == 1, tree
    assert names.count("invoke") == names.count("wait for concurrency") == 6, tree
    assert names.count("checkpoint") == 3, tree  # [a, b], [fail] given up, [c]
    invokes = [s for s in in_first if s.name == "invoke"]
    assert sorted(s.attributes["esm.outcome"] for s in invokes) == ["function_error"] * 4 + ["success"] * 2
    assert all(s.attributes["faas.invocation_id"] for s in invokes)

    # The handler saw each invocation span as its parent, in X-Ray's form and as its own span's parent.
    handler_seen = [json.loads(line) for line in complete_lines(seen_file)]
    assert len(handler_seen) == 6
    invoke_ids = {s.span_id for s in invokes}
    for seen in handler_seen:
        trace_id = first.trace_id
        assert seen["trace_id"] == trace_id
        assert seen["parent_span_id"] in invoke_ids
        assert (
            seen["xray"] == f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={seen['parent_span_id']};Sampled=1"
        )
    handler_spans = [s for s in spans if s.service == "traced-handler"]
    assert {(s.trace_id, s.parent_span_id) for s in handler_spans} == {
        (seen["trace_id"], seen["parent_span_id"]) for seen in handler_seen
    }, tree
    assert {s.name for s in handler_spans} == {"handler work"}
