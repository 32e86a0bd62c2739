"""The engine end to end on Kinesis (kinesis-mock): `esm worker` + `esm run` as real processes,
leases and checkpoints read back from the real store."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from esm_processes import EsmProcess
from stream_services import KinesisMock

from esm.ownership.leases import SHARD_END

from .harness import Worker, wait_until, write_config
from .stream_harness import (
    KeyedProducer,
    KinesisStream,
    Put,
    complete_lines,
    create_kinesis_stream,
    data_by_key,
    delivered_records,
    emulator_env,
    first_deliveries,
    function,
    keys,
    kinesis_mapping,
    put_records,
    read_leases,
    read_shard,
    redelivered_count,
    stream_daemon,
    write_checkpoint,
)

LEASE_SECONDS = 2


ROLE = "arn:aws:iam::000000000000:role/esm-test-function"


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path.resolve() / 'store.sqlite'}"


def stderr_of(*engines: EsmProcess) -> str:
    return "\n".join(
        f"--- esm {' '.join(e.args)} (pid {e.process.pid}):\n{e.stderr[-4000:]}" for e in engines
    )


def steals_noticed(*engines: EsmProcess) -> bool:
    """Every lease one engine took from another was given up by the one it was taken from."""
    logs = "\n".join(engine.stderr for engine in engines)
    stolen = Counter(re.findall(r"took (\S+) from ", logs))
    lost = Counter(re.findall(r"lost the lease of (\S+)", logs))
    return all(lost[shard] >= count for shard, count in stolen.items())


def stream_config(
    tmp_path: Path,
    worker: Worker,
    stream: KinesisStream,
    mapping_id: str,
    store: str | None = None,
    name: str = "esm",
    role: str | None = None,
    **mapping_overrides: Any,
) -> Path:
    """The config of one Kinesis mapping onto `worker`'s function, with this file's short leases."""
    return write_config(
        tmp_path / f"{name}.json",
        [function(worker, **({"Role": role} if role else {}))],
        [kinesis_mapping(stream, mapping_id, **mapping_overrides)],
        store=store,
        LeaseDurationSeconds=LEASE_SECONDS,
    )


def recorder_worker(out: Path) -> Worker:
    """A worker whose handler appends every event it gets to `out`."""
    return Worker(
        "tests.handlers.recorder:handler", concurrency=4, env={"ESM_RECORDER_FILE": str(out)}
    ).wait_serving()


def wait_all_delivered(out: Path, puts: Sequence[Put], *engines: EsmProcess, timeout: float = 60.0) -> None:
    expected = {(p.shard_id, p.sequence_number) for p in puts}
    missing: set[tuple[str, str]] = set()

    def done() -> bool:
        nonlocal missing
        missing = expected - {(d.shard_id, d.sequence_number) for d in delivered_records(out)}
        return not missing

    wait_until(
        done,
        timeout,
        interval=0.1,
        message=lambda: (
            f"all {len(expected)} records delivered, {len(missing)} missing\n{stderr_of(*engines)}"
        ),
    )


def last_sequences(puts: Sequence[Put]) -> dict[str, str]:
    """Each shard's highest sequence number put: its checkpoint once everything is processed."""
    last: dict[str, str] = {}
    for put in puts:
        if put.shard_id not in last or int(put.sequence_number) > int(last[put.shard_id]):
            last[put.shard_id] = put.sequence_number
    return last


def wait_checkpoints(url: str, mapping_id: str, stream: KinesisStream, expected: dict[str, str]) -> None:
    seen: dict[str, str | None] = {}

    def done() -> bool:
        nonlocal seen
        seen = {s: lease.checkpoint for s, lease in read_leases(url, mapping_id, stream.arn).items()}
        return all(seen.get(shard) == checkpoint for shard, checkpoint in expected.items())

    wait_until(done, 30, message=lambda: f"checkpoints {expected}, have {seen}")


def held_by_pid(url: str, mapping_id: str, stream: KinesisStream) -> dict[str, set[str]]:
    """pid of the daemon -> the shards it holds now (with `--processes 1` the daemon is the
    poller, and lease owners are "host:pid")."""
    by_pid: dict[str, set[str]] = {}
    for lease in read_leases(url, mapping_id, stream.arn).values():
        if lease.owner is not None and not lease.is_expired(time.time()):
            by_pid.setdefault(lease.owner.rpartition(":")[2], set()).add(lease.shard_id)
    return by_pid


def assert_put_order_per_key(puts: Sequence[Put], out: Path) -> None:
    """Per key, the first deliveries are exactly the records put, in put order (re-deliveries aside)."""
    assert data_by_key(first_deliveries(delivered_records(out))) == data_by_key(puts)


def test_four_shards_all_delivered_in_order_per_key(kinesis_mock: KinesisMock, tmp_path: Path) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=4)
    puts = KeyedProducer(stream, keys(40)).put_rounds(50)
    assert len(puts) == 2000 and len({p.shard_id for p in puts}) == 4
    out = tmp_path / "events.jsonl"
    worker = recorder_worker(out)
    mapping_id, url = str(uuid.uuid4()), store_url(tmp_path)
    config = stream_config(tmp_path, worker, stream, mapping_id, store=url, role=ROLE)
    engine = stream_daemon(config, emulator_env(kinesis_mock))
    try:
        wait_all_delivered(out, puts, engine)
        wait_checkpoints(url, mapping_id, stream, last_sequences(puts))
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert_put_order_per_key(puts, out)
    first_event = json.loads(complete_lines(out)[0])
    assert first_event["Records"][0]["invokeIdentityArn"] == ROLE  # the function's Role


def test_two_poller_processes_share_the_shards_evenly(kinesis_mock: KinesisMock, tmp_path: Path) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=4)
    puts = KeyedProducer(stream, keys(16)).put_rounds(20)
    out = tmp_path / "events.jsonl"
    worker = recorder_worker(out)
    mapping_id, url = str(uuid.uuid4()), store_url(tmp_path)
    config = stream_config(tmp_path, worker, stream, mapping_id, store=url)
    engine = stream_daemon(config, emulator_env(kinesis_mock), processes=2)
    shares: list[int] = []

    def two_each() -> bool:
        nonlocal shares
        shares = sorted(len(shards) for shards in held_by_pid(url, mapping_id, stream).values())
        return shares == [2, 2]

    try:
        wait_until(two_each, 30, message=lambda: f"two pollers with 2 shards each, have {shares}")
        wait_all_delivered(out, puts, engine)
        wait_checkpoints(url, mapping_id, stream, last_sequences(puts))
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert_put_order_per_key(puts, out)


def test_split_merge_and_update_shard_count_while_records_flow(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=2)
    out = tmp_path / "events.jsonl"
    worker = recorder_worker(out)
    mapping_id, url = str(uuid.uuid4()), store_url(tmp_path)
    config = stream_config(tmp_path, worker, stream, mapping_id, BatchSize=50, store=url)
    engine = stream_daemon(config, emulator_env(kinesis_mock))
    producer = KeyedProducer(stream, keys(20)).start()

    def flowing() -> None:
        """Waits until the engine delivered 100 more records: each reshard meets a live stream."""
        target = len(delivered_records(out)) + 100
        wait_until(
            lambda: len(delivered_records(out)) >= target,
            30,
            message=lambda: f"{target} deliveries\n{stderr_of(engine)}",
        )

    try:
        flowing()
        first, _ = stream.open_shards()
        stream.split(first)  # shard 0 -> 2 (lower half) and 3 (upper half)
        flowing()
        _, upper_half, second = stream.open_shards()
        stream.merge(upper_half, second)  # 3 + 1 -> 4: a child with parents of different lineage
        flowing()
        stream.update_shard_count(4)  # 2 and 4 each split in two
        flowing()
        puts = producer.stop()
        wait_all_delivered(out, puts, engine, timeout=90)
        parents = stream.parent_shard_ids()
        assert len(parents) == 5
        wait_checkpoints(url, mapping_id, stream, dict.fromkeys(parents, SHARD_END))
    finally:
        producer.stop(check=False)  # already reported, or the test failed before
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert len({p.shard_id for p in puts}) == 9, "records on every shard of the lineage"
    # Each key's records were put one after another, so a child's record delivered before its
    # parent's would show here as a record out of put order.
    assert_put_order_per_key(puts, out)


def test_two_daemons_share_leases_and_the_survivor_takes_over_a_kill_9(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=4)
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.slow:handler",
        concurrency=4,
        env={"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": "0.1"},
    ).wait_serving()
    mapping_id, url, batch_size = str(uuid.uuid4()), store_url(tmp_path), 20
    configs = [
        stream_config(tmp_path, worker, stream, mapping_id, BatchSize=batch_size, store=url, name=name)
        for name in ("a", "b")
    ]
    env = emulator_env(kinesis_mock)
    survivor, victim = (stream_daemon(config, env) for config in configs)
    producer = KeyedProducer(stream, keys(40))

    def held() -> dict[str, set[str]]:
        return held_by_pid(url, mapping_id, stream)

    def pids() -> tuple[str, str]:
        return str(survivor.process.pid), str(victim.process.pid)

    try:
        # Balanced, and every member a lease was stolen from has stopped that shard (its next
        # renewal is refused): a stale consumer still reading would add re-deliveries of its own.
        wait_until(
            lambda: (
                sorted(len(held().get(pid, ())) for pid in pids()) == [2, 2]
                and steals_noticed(survivor, victim)
            ),
            30,
            message=lambda: f"2 + 2 shards, have {held()}\n{stderr_of(survivor, victim)}",
        )
        before_kill = producer.put_rounds(30)
        victim_shards = held()[str(victim.process.pid)]
        wait_until(
            lambda: any(
                lease.checkpoint is not None
                for shard, lease in read_leases(url, mapping_id, stream.arn).items()
                if shard in victim_shards
            ),
            30,
            message=lambda: f"a checkpoint by the victim\n{stderr_of(victim)}",
        )
        stale = {
            shard: lease
            for shard, lease in read_leases(url, mapping_id, stream.arn).items()
            if shard in victim_shards
        }
        victim.kill()
        assert len(first_deliveries(delivered_records(out))) < len(before_kill), "killed too late"
        after_kill = producer.put_rounds(30)
        wait_until(
            lambda: held() == {str(survivor.process.pid): set(stream.shard_ids())},
            5 * LEASE_SECONDS + 10,
            message=lambda: (
                f"the survivor holding all 4 shards, have {held()}\n"
                f"{read_leases(url, mapping_id, stream.arn)}\n{stderr_of(survivor, victim)}"
            ),
        )
        puts = before_kill + after_kill
        wait_all_delivered(out, puts, survivor)
        wait_checkpoints(url, mapping_id, stream, last_sequences(puts))
        # The killed owner's write, fenced by its old (owner, token), must not land: SHARD_END
        # would be accepted as a forward move of any checkpoint.
        for shard, old in stale.items():
            assert old.owner is not None
            assert not write_checkpoint(url, mapping_id, stream.arn, old, old.owner, old.token, SHARD_END)
            assert read_leases(url, mapping_id, stream.arn)[shard].checkpoint == last_sequences(puts)[shard]
    finally:
        assert survivor.stop() == 0, survivor.stderr
        victim.stop()
        worker.stop()
    delivered = delivered_records(out)
    assert redelivered_count(delivered) <= len(victim_shards) * batch_size  # the batches in flight
    assert_put_order_per_key(puts, out)


def test_leases_stolen_mid_stream_go_back_when_the_thief_dies(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    """A member joining while records flow steals leases whose batches are in flight: the old
    owner's checkpoints for them are refused, it must stop those shards, and take them again once
    the thief dies; nothing is lost."""
    stream = create_kinesis_stream(kinesis_mock, shard_count=4)
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.slow:handler",
        concurrency=4,
        env={"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": "0.1"},
    ).wait_serving()
    mapping_id, url = str(uuid.uuid4()), store_url(tmp_path)
    configs = [
        stream_config(tmp_path, worker, stream, mapping_id, BatchSize=20, store=url, name=name)
        for name in ("first", "thief")
    ]
    env = emulator_env(kinesis_mock)
    # About half of what one daemon can take: every shard mostly has a batch in flight.
    producer = KeyedProducer(stream, keys(40)).start(interval=0.1)
    first = stream_daemon(configs[0], env)
    thief: EsmProcess | None = None

    def held() -> dict[str, set[str]]:
        return held_by_pid(url, mapping_id, stream)

    try:
        wait_until(
            lambda: len(delivered_records(out)) >= 200,
            30,
            message=lambda: f"the first daemon under way\n{stderr_of(first)}",
        )
        thief = stream_daemon(configs[1], env)
        wait_until(
            lambda: sorted(len(shards) for shards in held().values()) == [2, 2],
            30,
            message=lambda: f"2 + 2 shards, have {held()}\n{stderr_of(first, thief)}",
        )
        thief.kill()
        wait_until(
            lambda: held() == {str(first.process.pid): set(stream.shard_ids())},
            5 * LEASE_SECONDS + 10,
            message=lambda: (
                f"the first daemon holding all 4 shards again, have {held()}\n"
                f"{read_leases(url, mapping_id, stream.arn)}\n{stderr_of(first, thief)}"
            ),
        )
        puts = producer.stop()
        wait_all_delivered(out, puts, first)
        wait_checkpoints(url, mapping_id, stream, last_sequences(puts))
    finally:
        producer.stop(check=False)  # already reported, or the test failed before
        assert first.stop() == 0, first.stderr
        if thief is not None:
            thief.stop()
        worker.stop()
    assert_put_order_per_key(puts, out)


def test_parallelization_factor_runs_batches_of_one_shard_at_once_in_key_order(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=1)
    puts = KeyedProducer(stream, keys(16)).put_rounds(25)
    out, stats = tmp_path / "events.jsonl", tmp_path / "stats.json"
    worker = Worker(
        "tests.handlers.slow:handler",
        concurrency=4,
        env={"ESM_RECORDER_FILE": str(out), "ESM_SLOW_SECONDS": "0.05", "ESM_WORKER_STATS_FILE": str(stats)},
    ).wait_serving()
    mapping_id, url = str(uuid.uuid4()), store_url(tmp_path)
    config = stream_config(
        tmp_path, worker, stream, mapping_id, BatchSize=10, ParallelizationFactor=4, store=url
    )
    engine = stream_daemon(config, emulator_env(kinesis_mock))
    try:
        wait_all_delivered(out, puts, engine)
        [shard] = stream.shard_ids()
        wait_checkpoints(url, mapping_id, stream, {shard: puts[-1].sequence_number})
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    assert json.loads(stats.read_text())["max_in_flight"] > 1  # one shard, batches overlapping
    assert_put_order_per_key(puts, out)


def reported_windows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in complete_lines(path)]


def window_start(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_tumbling_window_sums_add_up_once_per_window_and_shard(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    window_seconds = 2
    stream = create_kinesis_stream(kinesis_mock, shard_count=2)
    results = tmp_path / "windows.jsonl"
    worker = Worker(
        "tests.handlers.window_sum:handler", env={"ESM_WINDOW_RESULTS_FILE": str(results)}
    ).wait_serving()
    config = stream_config(
        tmp_path, worker, stream, str(uuid.uuid4()), TumblingWindowInSeconds=window_seconds
    )
    engine = stream_daemon(config, emulator_env(kinesis_mock))
    value = iter(range(1, 10_000))
    puts: list[Put] = []
    try:
        # Records spread over about three windows: the pauses are the point, not a wait for a condition.
        for _ in range(12):
            puts += put_records(stream, [(f"k{i}", str(next(value)).encode()) for i in range(10)])
            time.sleep(0.4)
        total = sum(int(p.data) for p in puts)
        wait_until(
            lambda: sum(r["sum"] for r in reported_windows(results)) >= total,
            30,
            message=lambda: f"window sums adding up to {total}\n{stderr_of(engine)}",
        )
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    reported = reported_windows(results)
    # What each (shard, window) must sum to, from the arrival times Kinesis gave the records.
    expected: Counter[tuple[str, float]] = Counter()
    for shard in stream.shard_ids():
        for record in read_shard(stream, shard):
            arrival = round(record["ApproximateArrivalTimestamp"].timestamp(), 3)
            expected[(shard, math.floor(arrival / window_seconds) * window_seconds)] += int(record["Data"])
    got = Counter({(r["shardId"], window_start(r["window"]["start"])): r["sum"] for r in reported})
    assert len(got) == len(reported), f"a window reported twice: {reported}"
    assert got == expected
    assert len({start for _, start in expected}) >= 3
    assert all(
        window_start(r["window"]["end"]) - window_start(r["window"]["start"]) == window_seconds
        for r in reported
    )
    assert sum(r["records"] for r in reported) == len(puts)


def test_powertools_kinesis_handler_runs_unmodified(kinesis_mock: KinesisMock, tmp_path: Path) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=2)
    puts = put_records(stream, [(f"key-{i % 10}", json.dumps({"n": i}).encode()) for i in range(60)])
    out = tmp_path / "powertools.jsonl"
    worker = Worker(
        "tests.handlers.powertools_kinesis:handler", env={"ESM_RECORDER_FILE": str(out)}
    ).wait_serving()
    config = stream_config(
        tmp_path,
        worker,
        stream,
        str(uuid.uuid4()),
        BatchSize=25,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    engine = stream_daemon(config, emulator_env(kinesis_mock))

    def seen() -> list[dict[str, object]]:
        return [json.loads(line) for line in complete_lines(out)]

    try:
        wait_until(lambda: len(seen()) >= 60, 30, message=lambda: f"60 records, have {len(seen())}")
    finally:
        assert engine.stop() == 0, engine.stderr
        worker.stop()
    by_sequence = {str(r["sequenceNumber"]): r for r in seen()}
    assert len(by_sequence) == 60
    for put in puts:
        record = by_sequence[put.sequence_number]
        assert record["data"] == json.loads(put.data)
        assert record["partitionKey"] == put.partition_key
        assert record["shardId"] == put.shard_id
        assert record["eventSourceARN"] == stream.arn
        assert record["eventName"] == "aws:kinesis:record"
