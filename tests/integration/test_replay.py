"""`esm replay` end to end: the engine puts a poison record in a file destination, then
`python -m esm replay` re-drives it through a worker that no longer fails on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from esm_processes import REPO

from esm.embedded.topics import OutgoingRecord, produce

from .harness import Delivered, Worker, daemon, mapping, recorded, wait_committed, write_config

POISON = b"poison"


def test_a_poison_record_replays_into_a_worker_that_no_longer_fails_on_it(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, [OutgoingRecord(value=v, partition=0) for v in (b"r0", POISON, b"r2")])
    failures = tmp_path / "failures.jsonl"
    destination = f"file://{failures}"
    first_seen = tmp_path / "first.jsonl"
    failing = Worker(
        "tests.handlers.recorder:handler",
        env={"ESM_RECORDER_FILE": str(first_seen), "ESM_RECORDER_FAIL_VALUE": POISON.decode()},
    ).wait_serving()
    engine_mapping = mapping(
        kafka_broker,
        topic,
        f"g-{topic}",
        BatchSize=1,
        MaximumRetryAttempts=0,
        MaximumRetryBackoffInSeconds=1,
        DestinationConfig={"OnFailure": {"Destination": destination}},
    )
    config_path = tmp_path / "esm.json"
    write_config(config_path, [{"FunctionName": "fn", "Endpoints": [failing.address]}], [engine_mapping])
    engine = daemon(config_path)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 3)
    finally:
        assert engine.stop() == 0, engine.stderr
        failing.stop()
    assert POISON in {d.value for d in recorded(first_seen)}  # the engine did try it
    assert len(failures.read_text().splitlines()) == 1
    stored = failures.read_bytes()

    replayed_seen = tmp_path / "replayed.jsonl"
    fixed = Worker(
        "tests.handlers.recorder:handler",
        env={"ESM_RECORDER_FILE": str(replayed_seen), "ESM_RECORDER_FAIL_VALUE": "no-longer-failing"},
    ).wait_serving()
    write_config(config_path, [{"FunctionName": "fn", "Endpoints": [fixed.address]}], [engine_mapping])
    try:
        dry_run = run_replay(destination, config_path, "--dry-run")
        assert not replayed_seen.exists()  # a dry run invokes nothing
        replay = run_replay(destination, config_path)
    finally:
        fixed.stop()

    assert dry_run.returncode == 0, dry_run.stdout + dry_run.stderr
    assert (
        dry_run.stdout.splitlines()[-1]
        == "dry run: 1 of 1 would be replayed, 0 skipped (no payload); nothing was invoked"
    )

    assert replay.returncode == 0, replay.stdout + replay.stderr
    lines = replay.stdout.splitlines()
    assert lines[-1] == "replayed 1: 1 succeeded, 0 failed, 0 skipped (no payload)", replay.stdout
    assert lines[-2] == (
        f"record 1: RetryAttemptsExhausted, Kafka {topic}-0 offset 1 (1 record): succeeded on attempt 1"
    )
    assert recorded(replayed_seen) == [Delivered(partition=0, offset=1, value=POISON)]
    assert failures.read_bytes() == stored  # replay is read only


def run_replay(destination: str, config_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "esm",
            "replay",
            "--from",
            destination,
            "--to",
            "fn",
            "-c",
            str(config_path),
            *options,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
