"""Logs a person can read: what the daemon and the worker say about a function error, a partial
batch response and an invalid one, and what `esm status` shows of them (a real worker and
daemon, a real broker)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esm.embedded.topics import OutgoingRecord, produce

from .harness import Worker, daemon, esm_status, mapping, wait_until, write_config

# Partition 0: 2 of its 10 records are reported failed; 1: an invalid response; 2: a function error.
PARTITION_VALUES = {
    0: [f"r{i}".encode() for i in range(8)] + [b"bad8", b"bad9"],
    1: [b"bogus"],
    2: [b"raise"],
}


def test_what_is_said_of_function_errors_and_batch_responses(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=3)
    produce(
        kafka_broker,
        topic,
        [OutgoingRecord(value=v, partition=p) for p, values in PARTITION_VALUES.items() for v in values],
    )
    worker = Worker("tests.handlers.batch_responses:handler").wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [{"FunctionName": "fn", "Endpoints": [worker.address]}],
        [
            mapping(
                kafka_broker,
                topic,
                f"g-{topic}",
                BatchSize=10,
                FunctionResponseTypes=["ReportBatchItemFailures"],
                MaximumRetryBackoffInSeconds=1,
            )
        ],
    )
    engine = daemon(config)
    errors: dict[int, Any] = {}

    def each_partition_retried() -> bool:
        partitions = esm_status(config)[0]["partitions"]
        errors.update({p["partition"]: p["last_error"] for p in partitions})
        return all(p["retries"] and p["retries"] >= 2 for p in partitions)

    try:
        wait_until(each_partition_retried, timeout=60, message=lambda: f"retries of each partition: {errors}")
    finally:
        engine.stop()
        worker.stop()
    partial = "2 of 2 records reported failed, retrying from offset 8"  # the retry fails again
    invalid = 'the whole batch failed: itemIdentifier "bogus" is not in the batch'
    raised = f"ValueError: cannot handle {topic}-2 offset 0"
    assert errors == {0: partial, 1: invalid, 2: raised}
    log = engine.stderr
    assert f"shard {topic}-0: 2 of 10 records reported failed, retrying from offset 8 (retry 1 in " in log, (
        log
    )
    assert f"shard {topic}-1: {invalid} (retry 1 in " in log, log
    assert f"shard {topic}-2: function failed (retry 1 in " in log and f"): {raised}" in log, log
    # The worker logs each failed attempt once, as Lambda's runtimes do: time, request id, the error,
    # then its stack trace, every line carrying the request id.
    worker_log = worker.stderr.splitlines()
    error_lines = [i for i, line in enumerate(worker_log) if f"[ERROR] {raised}" in line]
    daemon_attempts = len(re.findall(rf"shard {topic}-2: function failed", log))
    assert daemon_attempts >= 2 and daemon_attempts <= len(error_lines) <= daemon_attempts + 1, (
        log,
        worker_log,
    )
    first = error_lines[0]
    request_id = worker_log[first].split("\t")[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", worker_log[first].split("\t")[0])
    assert worker_log[first + 1].endswith(f"\t{request_id}\tTraceback (most recent call last):")
    assert "batch_responses.py" in worker_log[first + 2] and f"\t{request_id}\t" in worker_log[first + 2]
