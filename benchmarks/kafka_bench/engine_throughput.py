"""(b) The engine's throughput: `esm run` with a no-op function, timed until every record is committed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from esm.demo.children import ChildProcess as ManagedProcess
from kafka_bench.engine import EngineUnavailable, MappingSpec, start_daemon, start_worker, write_config
from kafka_bench.stats import rate

NOOP_HANDLER = "benchmarks.handlers.noop:handler"
COMMIT_POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class EngineResult:
    records: int
    seconds_from_start: float
    """From launching `esm run` (process start, group join included) to the last commit seen."""
    seconds_from_first_commit: float | None
    """From the first commit seen to the last: the steady-state rate, without start-up."""
    records_after_first_commit: int

    @property
    def records_per_s(self) -> float:
        return rate(self.records, self.seconds_from_start)

    @property
    def records_per_s_after_first_commit(self) -> float | None:
        if self.seconds_from_first_commit is None:
            return None
        return rate(self.records_after_first_commit, self.seconds_from_first_commit)


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
    worker, endpoint = start_worker(NOOP_HANDLER, workdir, concurrency=4)
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
            return _time_until_committed(bootstrap, group, topic, ends, daemon, timeout_s)
        finally:
            daemon.stop()
    finally:
        worker.stop()


def _time_until_committed(
    bootstrap: str, group: str, topic: str, ends: dict[int, int], daemon: ManagedProcess, timeout_s: float
) -> EngineResult:
    started = time.monotonic()
    first_commit: float | None = None
    committed_at_first = 0
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
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                done = time.monotonic()
                return EngineResult(
                    records=sum(ends.values()),
                    seconds_from_start=done - started,
                    seconds_from_first_commit=None if first_commit is None else done - first_commit,
                    records_after_first_commit=sum(ends.values()) - committed_at_first,
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
