"""(b) The engine's throughput: `esm run` with a function that only notes each batch's arrival
(`benchmarks.handlers.batch_log`), timed until every record is committed, and between the first
and the last batch to reach the function."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from esm.demo.children import ChildProcess as ManagedProcess
from kafka_bench.engine import EngineUnavailable, MappingSpec, start_daemon, start_worker, write_config
from kafka_bench.proctree import cpu_seconds
from kafka_bench.stats import rate

# One line per invocation (its arrival time and record count): a few microseconds per batch.
BATCH_LOG_HANDLER = "benchmarks.handlers.batch_log:handler"
BATCH_DIR_ENV = "ESM_BENCH_BATCH_DIR"
COMMIT_POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class EngineResult:
    records: int
    seconds_from_start: float
    """From launching `esm run` (process start, group join included) to the last commit seen."""
    seconds_from_first_commit: float | None
    """From the first commit seen to the last: the steady-state rate, without start-up."""
    records_after_first_commit: int
    seconds_between_batches: float | None = None
    """From the first batch to reach the function to the last (the issue's measure: neither
    start-up nor the commit interval counts)."""
    records_after_first_batch: int = 0
    batches: int = 0
    """Invocations of the function (records / batches: the mean batch size)."""
    daemon_cpu_us_per_record: float | None = None
    """CPU time of `esm run` (its process tree) from the first commit to the last, per record
    committed meanwhile: unlike the rates, it changes little with what else the machine runs."""
    worker_cpu_us_per_record: float | None = None
    """The same for `esm worker` and its execution environments."""

    @property
    def records_per_s(self) -> float:
        return rate(self.records, self.seconds_from_start)

    @property
    def records_per_s_after_first_commit(self) -> float | None:
        if self.seconds_from_first_commit is None:
            return None
        return rate(self.records_after_first_commit, self.seconds_from_first_commit)

    @property
    def records_per_s_at_function(self) -> float | None:
        """The records after the first batch / the time from the first batch to the last."""
        if self.seconds_between_batches is None:
            return None
        return rate(self.records_after_first_batch, self.seconds_between_batches)


def batch_window(batches: Iterable[tuple[float, int]]) -> tuple[float, int] | None:
    """(seconds from the first batch's arrival to the last, records in the batches after the
    first) of (arrival time, record count) pairs; None for fewer than two batches."""
    ordered = sorted(batches)
    if len(ordered) < 2:
        return None
    return ordered[-1][0] - ordered[0][0], sum(count for _, count in ordered[1:])


def read_batch_logs(directory: Path) -> list[tuple[float, int]]:
    batches = []
    for path in directory.glob("batches-*.txt"):
        for line in path.read_text().splitlines():
            arrived, count = line.split()
            batches.append((float(arrived), int(count)))
    return batches


def measure_engine(
    bootstrap: str,
    topic: str,
    ends: dict[int, int],
    workdir: Path,
    timeout_s: float,
    kafka_client: str,
    batch_size: int = 500,
    processes: int = 1,
) -> EngineResult:
    batch_dir = workdir / f"batches-b{batch_size}-p{processes}"
    batch_dir.mkdir()
    worker, endpoint = start_worker(
        BATCH_LOG_HANDLER, workdir, concurrency=4, env={BATCH_DIR_ENV: str(batch_dir)}
    )
    try:
        # One group per setting: a sweep reads the same topic again from the start.
        group = f"bench-engine-{topic}-b{batch_size}-p{processes}"
        config = write_config(
            workdir,
            MappingSpec(
                bootstrap,
                topic,
                group,
                function_name="bench-noop",
                worker_endpoint=endpoint,
                batch_size=batch_size,
                kafka_client=kafka_client,
            ),
        )
        daemon = start_daemon(config, workdir, processes)
        try:
            result = _time_until_committed(bootstrap, group, topic, ends, daemon, worker, timeout_s)
        finally:
            daemon.stop()
    finally:
        worker.stop()
    batches = read_batch_logs(batch_dir)
    window = batch_window(batches)
    if window is None:
        return dataclasses.replace(result, batches=len(batches))
    seconds, records = window
    return dataclasses.replace(
        result, seconds_between_batches=seconds, records_after_first_batch=records, batches=len(batches)
    )


def _time_until_committed(
    bootstrap: str,
    group: str,
    topic: str,
    ends: dict[int, int],
    daemon: ManagedProcess,
    worker: ManagedProcess,
    timeout_s: float,
) -> EngineResult:
    started = time.monotonic()
    first_commit: float | None = None
    committed_at_first = 0
    cpu_at_first = (0.0, 0.0)
    committed: dict[int, int] = {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-commit-watcher")
    try:
        while True:
            now = time.monotonic()
            if daemon.exit_code() is not None:
                raise EngineUnavailable(daemon.describe_exit())
            if now - started > timeout_s:
                raise RuntimeError(
                    f"esm run committed {committed} of {ends} on {topic!r} in {timeout_s}s; "
                    f"{daemon.log_path} ends with:\n{daemon.log_tail()}"
                )
            committed = _committed(admin, group, topic)
            if first_commit is None and any(offset > 0 for offset in committed.values()):
                first_commit, committed_at_first = now, sum(committed.values())
                cpu_at_first = (cpu_seconds(daemon.pid), cpu_seconds(worker.pid))
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                done = time.monotonic()
                after_first = sum(ends.values()) - committed_at_first
                daemon_us = worker_us = None
                if first_commit is not None and after_first > 0:
                    daemon_us = (cpu_seconds(daemon.pid) - cpu_at_first[0]) / after_first * 1e6
                    worker_us = (cpu_seconds(worker.pid) - cpu_at_first[1]) / after_first * 1e6
                return EngineResult(
                    records=sum(ends.values()),
                    seconds_from_start=done - started,
                    seconds_from_first_commit=None if first_commit is None else done - first_commit,
                    records_after_first_commit=after_first,
                    daemon_cpu_us_per_record=daemon_us,
                    worker_cpu_us_per_record=worker_us,
                )
            time.sleep(COMMIT_POLL_INTERVAL_S)
    finally:
        admin.close()


def _committed(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    except KafkaError:
        return {}  # the group may have no coordinator until the daemon joins it
    return {
        tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0
    }
