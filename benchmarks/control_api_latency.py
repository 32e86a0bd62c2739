"""How soon a change made through the control API takes effect on a running daemon.

    .venv/bin/python benchmarks/control_api_latency.py [--runs 5]

Starts its own embedded broker (Tansu), a function worker and `esm run` with ControlApi, then for
each run, with boto3's own `lambda` client:
- create: from the CreateEventSourceMapping call to the first invocation of a fresh mapping on a
  topic that already holds records;
- update: while records flow at 500/s in batches of 50, from the UpdateEventSourceMapping call
  (BatchSize 50 -> 7) to the first batch cut with the new size.
Prints each run and the medians. AWS documents minutes for a new mapping and up to 90 s for an
update to apply. The bundled broker holds a group's JoinGroup for half its session timeout
(1.5 s here), which the create figure includes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from kafka_bench.engine import (
    KAFKA_CONSUMER_CONFIG,
    EngineUnavailable,
    require_engine,
    start_daemon,
    start_worker,
    write_checked_config,
)

from esm.control.sdk import with_esm_settings
from esm.embedded import OutgoingRecord, TansuBroker, create_topic, produce
from esm.netutil import free_port

HANDLER = "benchmarks.handlers.batch_log:handler"
KEY_ID, SECRET = "AKIAESMBENCHMARK0001", "benchmark-secret-not-for-real-use"
RATE = 500
OLD_BATCH, NEW_BATCH = 50, 7


def _batches(batch_dir: Path) -> list[tuple[float, int]]:
    found = []
    for path in batch_dir.glob("batches-*.txt"):
        for line in path.read_text().splitlines():
            at, count = line.split()
            found.append((float(at), int(count)))
    return sorted(found)


def _client(port: int) -> Any:
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 0}),
    )
    return with_esm_settings(client, {"KafkaConsumerConfig": KAFKA_CONSUMER_CONFIG})


def _wait(condition: Any, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found is not None:
            return float(found)
        time.sleep(0.005)
    raise EngineUnavailable(f"timed out waiting for {what}")


def _one_run(aws: Any, bootstrap: str, batch_dir: Path) -> tuple[float, float]:
    for path in batch_dir.glob("*"):
        path.unlink()
    topic = f"control-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, [OutgoingRecord(value=b"x" * 100, partition=0) for _ in range(OLD_BATCH)])
    asked = time.time()
    created = aws.create_event_source_mapping(
        FunctionName="fn",
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
        Topics=[topic],
        StartingPosition="TRIM_HORIZON",
        BatchSize=OLD_BATCH,
        MaximumBatchingWindowInSeconds=1,
    )
    first = _wait(
        lambda: next((at for at, _ in _batches(batch_dir) if at > asked), None), 60, "the first invocation"
    )
    create_s = first - asked

    stop = threading.Event()

    def flow() -> None:
        while not stop.is_set():
            produce(
                bootstrap, topic, [OutgoingRecord(value=b"y" * 100, partition=0) for _ in range(RATE // 10)]
            )
            stop.wait(0.1)

    producer = threading.Thread(target=flow, daemon=True)
    producer.start()
    try:
        _wait(
            lambda: True if sum(c == OLD_BATCH for _, c in _batches(batch_dir)) >= 5 else None,
            30,
            "full batches",
        )
        asked = time.time()
        aws.update_event_source_mapping(UUID=created["UUID"], BatchSize=NEW_BATCH)
        applied = _wait(
            lambda: next(
                (at for at, count in _batches(batch_dir) if at > asked and count <= NEW_BATCH), None
            ),
            30,
            "a batch with the new size",
        )
        update_s = applied - asked
    finally:
        stop.set()
        producer.join()
    aws.delete_event_source_mapping(UUID=created["UUID"])
    _wait(lambda: True if _deleted(aws, created["UUID"]) else None, 60, "the deletion")
    return create_s, update_s


def _deleted(aws: Any, mapping_id: str) -> bool:
    try:
        aws.get_event_source_mapping(UUID=mapping_id)
    except aws.exceptions.ResourceNotFoundException:
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    results: list[tuple[float, float]] = []
    try:
        require_engine()
        with tempfile.TemporaryDirectory(prefix="esm-control-") as tmp, TansuBroker() as broker:
            workdir = Path(tmp)
            batch_dir = workdir / "batches"
            batch_dir.mkdir()
            worker, endpoint = start_worker(
                HANDLER, workdir, concurrency=2, env={"ESM_BENCH_BATCH_DIR": str(batch_dir)}
            )
            port = free_port()
            config = {
                "Store": f"sqlite:///{(workdir / 'store.sqlite').resolve()}",
                "Metrics": {"Host": "127.0.0.1", "Port": free_port()},
                "Functions": [{"FunctionName": "fn", "Endpoints": [endpoint], "Timeout": 30}],
                "ControlApi": {
                    "Port": port,
                    "AccessKeys": [{"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET}],
                },
            }
            daemon = start_daemon(write_checked_config(workdir, config), workdir)
            try:
                aws = _client(port)
                _wait(lambda: True if _reachable(aws) else None, 30, "the control API")
                for run in range(1, args.runs + 1):
                    create_s, update_s = _one_run(aws, broker.bootstrap, batch_dir)
                    results.append((create_s, update_s))
                    print(
                        f"[run {run}] create -> first invocation {create_s * 1000:.0f} ms; "
                        f"update -> first new batch {update_s * 1000:.0f} ms",
                        file=sys.stderr,
                    )
            finally:
                daemon.stop()
                worker.stop()
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    creates, updates = [r[0] for r in results], [r[1] for r in results]
    print(
        f"create -> first invocation: median {statistics.median(creates) * 1000:.0f} ms "
        f"(min {min(creates) * 1000:.0f}, max {max(creates) * 1000:.0f}; AWS: minutes)"
    )
    print(
        f"update -> first batch with the new setting: median {statistics.median(updates) * 1000:.0f} ms "
        f"(min {min(updates) * 1000:.0f}, max {max(updates) * 1000:.0f}; AWS: up to 90 s)"
    )
    return 0


def _reachable(aws: Any) -> bool:
    try:
        aws.list_functions()
    except Exception:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
