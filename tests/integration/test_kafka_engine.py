"""The engine end to end on a real broker (Tansu): `esm worker` + `esm run` as real processes."""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from esm.embedded.topics import OutgoingRecord, committed_offsets, produce

from .harness import Worker, daemon, mapping, recorded, wait_committed, wait_until, write_config

# The tests that exercise ownership run once per Kafka client library.
CLIENTS = pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])


def produce_numbered(bootstrap: str, topic: str, n: int, partitions: int = 4, start: int = 0) -> set[bytes]:
    values = [f"r{i}".encode() for i in range(start, start + n)]
    produce(
        bootstrap, topic, [OutgoingRecord(value=v, partition=i % partitions) for i, v in enumerate(values)]
    )
    return set(values)


def function(worker: Worker, **extra: object) -> dict[str, object]:
    return {"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30, **extra}


@CLIENTS
def test_ten_thousand_records_over_four_partitions_in_order(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path, client: str
) -> None:
    topic = new_topic(partitions=4)
    expected = produce_numbered(kafka_broker, topic, 10_000)
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.recorder:handler", concurrency=4, env={"ESM_RECORDER_FILE": str(out)}
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [mapping(kafka_broker, topic, f"g-{topic}", BatchSize=500, KafkaClient=client)],
    )
    engine = daemon(config)
    try:
        committed = wait_committed(kafka_broker, f"g-{topic}", topic, 10_000)
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert committed == {0: 2500, 1: 2500, 2: 2500, 3: 2500}
    delivered = recorded(out)
    assert {d.value for d in delivered} == expected
    by_partition: dict[int, list[int]] = defaultdict(list)
    for d in delivered:
        by_partition[d.partition].append(d.offset)
    for offsets in by_partition.values():
        assert offsets == list(range(2500))  # offset order, no gaps, no duplicates on a clean run


def test_powertools_kafka_handler_runs_unmodified(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    records = [
        OutgoingRecord(
            value=json.dumps({"n": i}).encode(),
            key=f"key-{i}".encode(),
            headers=[("trace", f"t{i}".encode()), ("source", b"test")],
            partition=i % 2,
        )
        for i in range(50)
    ]
    produce(kafka_broker, topic, records)
    out = tmp_path / "powertools.jsonl"
    worker = Worker(
        "tests.handlers.powertools_kafka:handler", env={"ESM_RECORDER_FILE": str(out)}
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json", [function(worker)], [mapping(kafka_broker, topic, f"g-{topic}")]
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 50)
    finally:
        engine.stop()
        worker.stop()
    seen = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["value"]["n"])
    assert [r["value"] for r in seen] == [{"n": i} for i in range(50)]
    assert [r["key"] for r in seen] == [f"key-{i}" for i in range(50)]
    assert all(r["headers"] == {"trace": f"t{r['value']['n']}", "source": "test"} for r in seen)
    assert {r["topic"] for r in seen} == {topic}
    assert seen[0]["servers"] == [kafka_broker]
    assert seen[0]["function"] == "fn"


def test_restart_resumes_from_committed_offsets(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=4)
    first = produce_numbered(kafka_broker, topic, 2000)
    out = tmp_path / "events.jsonl"
    worker = Worker("tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(out)}).wait_serving()
    config = write_config(
        tmp_path / "esm.json", [function(worker)], [mapping(kafka_broker, topic, f"g-{topic}")]
    )
    try:
        engine = daemon(config)
        wait_committed(kafka_broker, f"g-{topic}", topic, 2000)
        assert engine.stop() == 0
        assert {d.value for d in recorded(out)} == first
        out.unlink()
        second = produce_numbered(kafka_broker, topic, 1000, start=2000)
        engine = daemon(config)
        wait_committed(kafka_broker, f"g-{topic}", topic, 3000)
        assert engine.stop() == 0
    finally:
        worker.stop()
    # The restart read only what was not committed: nothing of the first run came again.
    assert {d.value for d in recorded(out)} == second


@CLIENTS
def test_kill_9_mid_stream_then_restart_loses_nothing(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path, client: str
) -> None:
    topic = new_topic(partitions=4)
    expected = produce_numbered(kafka_broker, topic, 4000)
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.slow:handler",
        concurrency=4,
        env={"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": "0.02"},
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [mapping(kafka_broker, topic, f"g-{topic}", BatchSize=50, KafkaClient=client)],
    )
    try:
        engine = daemon(config)
        wait_until(
            lambda: sum(committed_offsets(kafka_broker, f"g-{topic}", topic).values()) >= 500,
            message="some offsets committed",
        )
        engine.kill()  # SIGKILL mid-stream: no shutdown, no final commit
        assert sum(committed_offsets(kafka_broker, f"g-{topic}", topic).values()) < 4000, "killed too late"
        engine = daemon(config)
        wait_committed(kafka_broker, f"g-{topic}", topic, 4000)
        assert engine.stop() == 0
    finally:
        worker.stop()
    assert {d.value for d in recorded(out)} == expected  # at least once: every record, duplicates allowed


def test_concurrency_limit_holds_across_mappings_and_processes(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topics = [new_topic(partitions=4), new_topic(partitions=4)]
    expected: set[bytes] = set()
    for n, topic in enumerate(topics):
        expected |= produce_numbered(kafka_broker, topic, 600, start=n * 1000)
    out, stats = tmp_path / "events.jsonl", tmp_path / "stats.json"
    # The worker could run 6 at once; the function's limit is 2.
    worker = Worker(
        "tests.handlers.slow:handler",
        concurrency=6,
        env={"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": "0.03", "ESM_WORKER_STATS_FILE": str(stats)},
    ).wait_serving()
    config = write_config(
        tmp_path / "esm.json",
        [function(worker, ReservedConcurrentExecutions=2)],
        [mapping(kafka_broker, t, f"g-{t}", BatchSize=10) for t in topics],
    )
    engine = daemon(config, processes=2)
    try:
        for topic in topics:
            wait_committed(kafka_broker, f"g-{topic}", topic, 600, timeout=120)
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert {d.value for d in recorded(out)} == expected
    max_in_flight = json.loads(stats.read_text())["max_in_flight"]
    assert max_in_flight == 2  # reached, never exceeded


@CLIENTS
def test_two_daemons_in_one_group_one_leaves_mid_stream(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path, client: str
) -> None:
    topic = new_topic(partitions=4)
    expected = produce_numbered(kafka_broker, topic, 3000)
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.slow:handler",
        concurrency=4,
        env={"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": "0.02"},
    ).wait_serving()
    group = f"g-{topic}"
    config_a = write_config(
        tmp_path / "a.json",
        [function(worker)],
        [mapping(kafka_broker, topic, group, BatchSize=25, KafkaClient=client)],
    )
    config_b = write_config(
        tmp_path / "b.json",
        [function(worker)],
        [mapping(kafka_broker, topic, group, BatchSize=25, KafkaClient=client)],
    )
    history: list[dict[int, int]] = []
    a = daemon(config_a)
    b = daemon(config_b)
    try:
        b.wait_for_line(r"assigned")
        wait_until(
            lambda: (
                bool(history.append(committed_offsets(kafka_broker, group, topic)))
                or sum(history[-1].values()) >= 600
            ),
            message="progress with two members",
        )
        assert b.stop() == 0  # leaves the group mid-stream
        wait_until(
            lambda: (
                bool(history.append(committed_offsets(kafka_broker, group, topic)))
                or sum(history[-1].values()) >= 3000
            ),
            timeout=90,
            message=lambda: f"all committed by the survivor: {history[-1]}\nA:\n{a.stderr}\nB:\n{b.stderr}",
        )
    finally:
        a.stop()
        b.stop()
        worker.stop()
    assert {d.value for d in recorded(out)} == expected
    # A revoked owner's late commit would move a partition's offset backwards.
    for earlier, later in itertools.pairwise(history):
        for partition, offset in earlier.items():
            assert later.get(partition, 0) >= offset, f"partition {partition} went back: {earlier} -> {later}"
    assert "revoked" in a.stderr or "revoked" in b.stderr


def test_worker_down_then_up_loses_nothing(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    expected = produce_numbered(kafka_broker, topic, 300, partitions=2)
    out = tmp_path / "events.jsonl"
    absent = Worker.__new__(Worker)  # reserve an address nobody serves yet
    from esm.netutil import free_port

    absent.port = free_port()
    config = write_config(
        tmp_path / "esm.json", [function(absent)], [mapping(kafka_broker, topic, f"g-{topic}")]
    )
    engine = daemon(config)
    try:
        engine.wait_for_line(r"function not invoked \(unreachable")
        time.sleep(1.0)
        assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {}
        assert engine.process.poll() is None  # still running, retrying
        worker = Worker(
            "tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(out)}, port=absent.port
        )
        worker.wait_serving()
        try:
            wait_committed(kafka_broker, f"g-{topic}", topic, 300)
        finally:
            worker.stop()
    finally:
        assert engine.stop() == 0
    assert {d.value for d in recorded(out)} == expected


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "Functions:\n  - FunctionName: fn\n    Endpoints: ['127.0.0.1:1']\n"
        "EventSourceMappings:\n  - FunctionName: fn\n    Topics: [t]\n    BatchSize: 20000\n"
        "    SelfManagedEventSource: {Endpoints: {KAFKA_BOOTSTRAP_SERVERS: ['127.0.0.1:1']}}\n"
    )
    engine = daemon(config)
    assert engine.wait() == 1
    assert "EventSourceMappings[0].BatchSize: must be between 1 and 10000, got 20000" in engine.stderr


def test_unimportable_handler_fails_fast(tmp_path: Path) -> None:
    worker = Worker("tests.handlers.does_not_exist:handler")
    assert worker.wait() == 1
    assert "tests.handlers.does_not_exist" in worker.stderr
