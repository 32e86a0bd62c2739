"""Lambda's 6 MB response rule end to end: a response over it is a function error that counts as
an attempt, not a throttle that would re-run the function forever (issue 10, item 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from esm.embedded.topics import OutgoingRecord, produce

from .harness import Worker, complete_lines, daemon, mapping, wait_committed, write_config
from .test_kafka_failures import read_all


def test_a_20_mb_response_is_retried_once_then_given_to_the_destination(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, [OutgoingRecord(value=b"big", partition=0)])
    invocations = tmp_path / "invocations.txt"
    destination = f"file://{tmp_path / 'failures.jsonl'}"
    worker = Worker("tests.handlers.large_response:handler", env={"ESM_RECORDER_FILE": str(invocations)})
    worker.wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [{"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30}],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                MaximumRetryAttempts=1,
                MaximumRetryBackoffInSeconds=1,
                DestinationConfig={"OnFailure": {"Destination": destination}},
            )
        ],
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 1)
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert len(complete_lines(invocations)) == 2  # the first attempt and one retry
    [failure] = read_all(destination)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    error = failure["esm"]["lastFunctionError"]
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291556 bytes)" in error["errorMessage"]
    assert "throttled" not in engine.stderr
