"""Kafka ParallelizationFactor end to end on the bundled broker: a partition's records over N lanes
by key, order kept per key, nothing lost across kill -9 and a rebalance to a second daemon."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from esm.embedded.topics import OutgoingRecord, committed_offsets, produce

from .harness import Delivered, Worker, daemon, mapping, recorded, wait_committed, wait_until, write_config

KEYS = [f"k{n:03d}" for n in range(200)]
# The handler takes this long per batch, so lanes overlap.
HANDLER_SECONDS = "0.02"


def produce_keyed(bootstrap: str, topic: str, count: int, partitions: int) -> dict[bytes, str]:
    """`count` records spread over the keys (so over the lanes) and the partitions; the value
    names the key: value -> key."""
    records = []
    keys_of: dict[bytes, str] = {}
    for n in range(count):
        key = KEYS[(n * 7) % len(KEYS)]
        value = f"{key}:{n}".encode()
        keys_of[value] = key
        records.append(OutgoingRecord(value=value, key=key.encode(), partition=n % partitions))
    produce(bootstrap, topic, records)
    return keys_of


def offsets_by_key(delivered: list[Delivered], keys_of: dict[bytes, str]) -> dict[str, list[int]]:
    """Per key, the offsets in the order the handler saw them (records of one key share a partition)."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for d in delivered:
        by_key[keys_of[d.value]].append(d.offset)
    return by_key


def increasing_runs(offsets: list[int]) -> int:
    """How many strictly increasing runs the sequence is made of (1: in order, no repeats)."""
    return 1 + sum(1 for a, b in itertools.pairwise(offsets) if b <= a)


def slow_worker(out: Path, stats: Path | None = None) -> Worker:
    env = {"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": HANDLER_SECONDS}
    if stats is not None:
        env["ESM_WORKER_STATS_FILE"] = str(stats)
    return Worker("tests.handlers.slow:handler", concurrency=10, env=env).wait_serving()


def function(worker: Worker) -> dict[str, object]:
    return {"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30}


@pytest.mark.parametrize(("partitions", "lanes"), [(1, 1), (1, 10), (2, 10)])
def test_lanes_keep_order_per_key_and_deliver_everything_once(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path, partitions: int, lanes: int
) -> None:
    topic = new_topic(partitions=partitions)
    keys_of = produce_keyed(kafka_broker, topic, 1500, partitions)
    out, stats = tmp_path / "events.jsonl", tmp_path / "stats.json"
    worker = slow_worker(out, stats)
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [mapping(kafka_broker, topic, f"g-{topic}", BatchSize=10, ParallelizationFactor=lanes)],
    )
    engine = daemon(config)
    try:
        committed = wait_committed(kafka_broker, f"g-{topic}", topic, 1500, timeout=120)
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert sum(committed.values()) == 1500
    delivered = recorded(out)
    assert sorted(d.value for d in delivered) == sorted(keys_of)  # each record once on a clean run
    for key, offsets in offsets_by_key(delivered, keys_of).items():
        assert offsets == sorted(set(offsets)), f"{key}: {offsets}"
    in_flight = json.loads(stats.read_text())["max_in_flight"]
    if lanes == 1:
        assert in_flight <= partitions  # one batch per partition
    else:
        assert in_flight > partitions, "lanes put more than one batch per partition in flight"
    assert f"{lanes} lanes per partition" in engine.stderr


def test_kill_9_mid_run_with_lanes_loses_nothing(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    keys_of = produce_keyed(kafka_broker, topic, 3000, 2)
    out = tmp_path / "events.jsonl"
    worker = slow_worker(out)
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [mapping(kafka_broker, topic, f"g-{topic}", BatchSize=10, ParallelizationFactor=10)],
    )
    try:
        engine = daemon(config)
        wait_until(
            lambda: sum(committed_offsets(kafka_broker, f"g-{topic}", topic).values()) >= 600,
            message="some offsets committed",
        )
        engine.kill()  # no shutdown, no final commit: lanes in flight are cut off
        assert sum(committed_offsets(kafka_broker, f"g-{topic}", topic).values()) < 3000, "killed too late"
        engine = daemon(config)
        wait_committed(kafka_broker, f"g-{topic}", topic, 3000, timeout=120)
        assert engine.stop() == 0
    finally:
        worker.stop()
    delivered = recorded(out)
    assert {d.value for d in delivered} == set(keys_of)  # at least once: nothing lost
    for key, offsets in offsets_by_key(delivered, keys_of).items():
        # In order within each daemon's run; the restart re-reads from the committed offset.
        assert increasing_runs(offsets) <= 2, f"{key}: {offsets}"


def test_a_rebalance_to_a_second_daemon_with_lanes_loses_nothing(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=4)
    keys_of = produce_keyed(kafka_broker, topic, 4000, 4)
    out = tmp_path / "events.jsonl"
    worker = slow_worker(out)
    group = f"g-{topic}"
    entry = mapping(kafka_broker, topic, group, BatchSize=10, ParallelizationFactor=10)
    config_a = write_config(tmp_path / "a.json", [function(worker)], [entry])
    config_b = write_config(tmp_path / "b.json", [function(worker)], [entry])
    history: list[dict[int, int]] = []

    def progress(total: int) -> Callable[[], bool]:
        def check() -> bool:
            history.append(committed_offsets(kafka_broker, group, topic))
            return sum(history[-1].values()) >= total

        return check

    a = daemon(config_a)
    b: object = None
    try:
        wait_until(progress(800), message="progress with one member")
        b = daemon(config_b)
        b.wait_for_line(r"assigned")  # type: ignore[attr-defined]
        wait_until(progress(4000), timeout=120, message=lambda: f"all committed: {history[-1]}")
    finally:
        a.stop()
        if b is not None:
            b.stop()  # type: ignore[attr-defined]
        worker.stop()
    delivered = recorded(out)
    assert {d.value for d in delivered} == set(keys_of)
    for key, offsets in offsets_by_key(delivered, keys_of).items():
        assert increasing_runs(offsets) <= 2, f"{key}: {offsets}"
    for earlier, later in itertools.pairwise(history):
        for partition, offset in earlier.items():
            assert later.get(partition, 0) >= offset, f"partition {partition} went back: {earlier} -> {later}"
