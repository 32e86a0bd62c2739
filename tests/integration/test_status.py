"""`esm status` against a running daemon: one partition stuck retrying a poison record while the
other keeps flowing, as the owner reports it and as Kafka holds it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stream_services import KinesisMock

from .harness import Worker, daemon, esm_status, wait_until, write_config
from .stream_harness import (
    KeyedProducer,
    create_kinesis_stream,
    emulator_env,
    function,
    keys,
    kinesis_mapping,
    stream_daemon,
)
from .stuck_partition import stuck_partition


def test_status_shows_a_partition_retrying_while_the_other_flows(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    run = stuck_partition(kafka_broker, topic, tmp_path)
    worker, config = run.worker, run.config
    engine = daemon(config)
    try:
        # partition 0 is fully processed although partition 1 is stuck on offset 10
        run.wait_partition_0_done(kafka_broker, topic, engine)
        seen: list[dict[str, Any]] = []

        def stuck_partition_reported() -> bool:
            seen[:] = esm_status(config)
            p1 = seen[0]["partitions"][1]
            return bool(p1["retries"]) and bool(p1["in_flight"])

        wait_until(stuck_partition_reported, timeout=30, message=lambda: f"status shows the retry: {seen}")
    finally:
        engine.stop()
        worker.stop()
    [entry] = seen
    assert entry["state"] == "Enabled" and entry["topic"] == topic and entry["function"] == "fn"
    p0, p1 = entry["partitions"]
    assert (p0["committed"], p0["end"], p0["lag"]) == (30, 30, 0)
    assert p0["last_processing_result"] == "OK"
    assert p1["committed"] == 10 and p1["lag"] == 20
    assert p1["in_flight"][0]["first"] == 10  # one entry per lane with a batch in flight
    assert p1["last_processing_result"] == "PROBLEM: Function call failed"
    assert "poison" in p1["last_error"]
    assert p1["owner"] and p1["owner"] == p0["owner"]


def test_status_lists_each_kinesis_shard_with_its_owner_and_checkpoint(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=2)
    puts = KeyedProducer(stream, keys(10)).put_rounds(5)
    last_put = {put.shard_id: put.sequence_number for put in puts}  # put in order per shard
    assert len(last_put) == 2
    worker = Worker(
        "tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(tmp_path / "e.jsonl")}
    ).wait_serving()
    mapping_id = str(uuid.uuid4())
    config = write_config(
        tmp_path / "esm.json",
        [function(worker)],
        [kinesis_mapping(stream, mapping_id)],
        LeaseDurationSeconds=3,
    )
    engine = stream_daemon(config, emulator_env(kinesis_mock))
    owner = f"{socket.gethostname()}:{engine.process.pid}"  # `--processes 1`: the daemon polls
    seen: list[dict[str, Any]] = []

    def both_shards_processed() -> bool:
        """Each shard at its last record, owned, and its owner's report caught up with it."""
        seen[:] = esm_status(config)
        shown = {
            s["shard_id"]: (
                s["owner"],
                s["checkpoint"],
                s["state"],
                s["in_flight"],
                s["millis_behind_latest"],
            )
            for s in seen[0]["shards"]
        }
        nothing_in_flight: list[dict[str, Any]] = []
        return shown == {
            shard_id: (owner, seq, "PROCESSING", nothing_in_flight, 0) for shard_id, seq in last_put.items()
        }

    try:
        wait_until(
            both_shards_processed,
            timeout=30,
            message=lambda: f"status shows both shards processed by {owner}: {seen}\n{engine.stderr[-3000:]}",
        )
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    [entry] = seen
    assert entry["stream"] == stream.arn and "partitions" not in entry and "error" not in entry
    for shard in entry["shards"]:
        assert shard["lease"] == "held" and 0 < shard["lease_expires_in_seconds"] <= 3
        assert shard["last_processing_result"] == "OK" and shard["last_error"] is None
        assert shard["data_lost_at"] is None and shard["parents"] == []
    # Released at shutdown: the shards still show, without an owner, at their checkpoints.
    after_stop = {shard["shard_id"]: shard for shard in esm_status(config)[0]["shards"]}
    assert {shard_id: (s["owner"], s["lease"], s["checkpoint"]) for shard_id, s in after_stop.items()} == {
        shard_id: (None, "free", sequence) for shard_id, sequence in last_put.items()
    }
