"""(c) Produce-to-handler latency at a fixed rate, measured inside the function.

The engine starts first and is warmed up (a `warmup` record per partition reaches the handler),
so the figures show steady-state delivery, not group join. Records are then produced at a fixed
rate, each stamped with CreateTime by the producer; the handler (benchmarks/handlers/latency.py)
writes now - CreateTime per record.

What the engine spent on it is measured beside: the CPU time of the daemon's and the worker's
process trees (the worker's includes its execution environments) and the invocations the daemon
counted (its /metrics), from the end of the warm-up to the last record reaching the handler.

The producer sends what it holds every `PRODUCER_LINGER_MS`, without waiting for answers in
between. (It used to flush every 5 records: 1,000 synchronous round trips a second at 5,000
records/s, which Tansu could not serve on a 2-core machine: alone it reached 3,621 records/s,
beside the engine less, and the broker's backlog, not any consumer, set the tail.) The rate it
reached is reported with the latencies (`sent_per_s`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer

from esm.demo.children import ChildProcess as ManagedProcess
from esm.demo.engine_metrics import scrape
from esm.embedded import create_topic
from esm.percentiles import percentile
from kafka_bench.engine import (
    KAFKA_CONSUMER_CONFIG,
    EngineUnavailable,
    MappingSpec,
    start_daemon,
    start_worker,
    write_config,
)
from kafka_bench.proctree import cpu_seconds

LATENCY_HANDLER = "benchmarks.handlers.latency:handler"
LATENCY_DIR_ENV = "ESM_BENCH_LATENCY_DIR"  # the handler's contract: see benchmarks/handlers/latency.py
WARMUP_KEY = b"warmup"
WARMUP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0
COUNT_SETTLE_S = 0.3
# Adds at most this to a record's latency, for engine and floor alike; one produce request per
# linger, not one per record, is what keeps the broker's share of the tail small at high rates.
PRODUCER_LINGER_MS = 2


@dataclass(frozen=True)
class LatencyResult:
    records: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # The rate the producer reached (records / the time it took to send them), where known.
    sent_per_s: float | None = None
    # What the engine spent (Kafka's (c) only; see the module's docstring).
    invocations: int | None = None
    daemon_cpu_ms_per_invocation: float | None = None
    worker_cpu_ms_per_invocation: float | None = None

    @classmethod
    def of(
        cls, latencies_ms: Sequence[float], sent_per_s: float | None = None, cost: EngineCost | None = None
    ) -> LatencyResult:
        return cls(
            records=len(latencies_ms),
            p50_ms=percentile(latencies_ms, 50),
            p95_ms=percentile(latencies_ms, 95),
            p99_ms=percentile(latencies_ms, 99),
            max_ms=max(latencies_ms),
            sent_per_s=sent_per_s,
            invocations=cost.invocations if cost else None,
            daemon_cpu_ms_per_invocation=cost.daemon_cpu_ms_per_invocation if cost else None,
            worker_cpu_ms_per_invocation=cost.worker_cpu_ms_per_invocation if cost else None,
        )


@dataclass(frozen=True)
class CostMark:
    """CPU seconds of the daemon's and worker's process trees, and the daemon's invocation count."""

    daemon_cpu_s: float
    worker_cpu_s: float
    invocations: int

    @classmethod
    def take(cls, daemon: ManagedProcess, worker: ManagedProcess, metrics_url: str) -> CostMark:
        snapshot = scrape(metrics_url)
        if snapshot is None:
            raise RuntimeError(f"the daemon's metrics at {metrics_url} could not be read")
        return cls(cpu_seconds(daemon.pid), cpu_seconds(worker.pid), snapshot.invocations)


@dataclass(frozen=True)
class EngineCost:
    invocations: int
    daemon_cpu_ms_per_invocation: float | None
    worker_cpu_ms_per_invocation: float | None

    @classmethod
    def between(cls, start: CostMark, end: CostMark) -> EngineCost:
        invocations = end.invocations - start.invocations
        if invocations <= 0:
            return cls(invocations, None, None)
        return cls(
            invocations,
            1000 * (end.daemon_cpu_s - start.daemon_cpu_s) / invocations,
            1000 * (end.worker_cpu_s - start.worker_cpu_s) / invocations,
        )


def measure_latency(
    bootstrap: str,
    topic: str,
    partitions: int,
    workdir: Path,
    rate_per_s: int,
    seconds: float,
    kafka_client: str,
) -> LatencyResult:
    out_dir = workdir / "latency"
    out_dir.mkdir()
    create_topic(bootstrap, topic, partitions)
    worker, endpoint = start_worker(
        LATENCY_HANDLER, workdir, concurrency=4, env={LATENCY_DIR_ENV: str(out_dir)}
    )
    try:
        mapping = MappingSpec(
            bootstrap,
            topic,
            f"bench-latency-{topic}",
            function_name="bench-latency",
            worker_endpoint=endpoint,
            kafka_client=kafka_client,
        )
        config_path = write_config(workdir, mapping)
        metrics_port = json.loads(config_path.read_text())["Metrics"]["Port"]
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        daemon = start_daemon(config_path, workdir)
        try:
            producer = _producer(bootstrap)
            try:
                _warm_up(producer, topic, partitions, out_dir, daemon)
                start = CostMark.take(daemon, worker, metrics_url)
                count, sent_per_s = _produce_paced(producer, topic, partitions, rate_per_s, seconds)
            finally:
                producer.close()
            latencies = _wait_for_latencies(out_dir, count, daemon)
            # The daemon counts an invocation when its answer is back, after the handler wrote.
            time.sleep(COUNT_SETTLE_S)
            cost = EngineCost.between(start, CostMark.take(daemon, worker, metrics_url))
        finally:
            daemon.stop()
    finally:
        worker.stop()
    return LatencyResult.of(latencies, sent_per_s, cost)


def measure_floor(
    bootstrap: str, topic: str, partitions: int, rate_per_s: int, seconds: float
) -> LatencyResult:
    """(d) The same producer and broker with a plain kafka-python consumer in place of the engine
    (no group, no function): what produce-to-consumer latency this machine and broker allow."""
    create_topic(bootstrap, topic, partitions)
    count = int(rate_per_s * seconds)
    consumer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("latency_consumer.py")),
            bootstrap,
            topic,
            str(partitions),
            str(count),
            str(KAFKA_CONSUMER_CONFIG["fetch.max.wait.ms"]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert consumer.stdout is not None
        if consumer.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor's consumer did not start")
        producer = _producer(bootstrap)
        try:
            _, sent_per_s = _produce_paced(producer, topic, partitions, rate_per_s, seconds)
        finally:
            producer.close()
        out, _ = consumer.communicate(timeout=DRAIN_TIMEOUT_S)
    finally:
        if consumer.poll() is None:
            consumer.kill()
    latencies = [float(value) for value in out.split()]
    return LatencyResult.of(latencies, sent_per_s)


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, linger_ms=PRODUCER_LINGER_MS, acks=1)


def _warm_up(
    producer: KafkaProducer, topic: str, partitions: int, out_dir: Path, daemon: ManagedProcess
) -> None:
    """One warm-up record per partition; returns once the handler has seen all of them."""
    for partition in range(partitions):
        producer.send(topic, key=WARMUP_KEY, value=b"{}", partition=partition)
    producer.flush()
    _wait_until(
        lambda: all((out_dir / f"warmup-{p}").exists() for p in range(partitions)),
        daemon,
        WARMUP_TIMEOUT_S,
        lambda: f"the warm-up records did not reach the handler within {WARMUP_TIMEOUT_S}s",
    )


def _produce_paced(
    producer: KafkaProducer, topic: str, partitions: int, rate_per_s: int, seconds: float
) -> tuple[int, float]:
    """Send record i at start + i/rate (a schedule, so a slow send does not shift the ones after).
    Returns the count and the rate reached (below `rate_per_s` when sending fell behind)."""
    count = int(rate_per_s * seconds)
    value = b"x" * 100
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer to the wall clock is the point here
        producer.send(topic, value=value, partition=i % partitions)
    producer.flush()
    return count, count / (time.monotonic() - start)


def _wait_for_latencies(out_dir: Path, expected: int, daemon: ManagedProcess) -> list[float]:
    _wait_until(
        lambda: len(_read_latencies(out_dir)) >= expected,
        daemon,
        DRAIN_TIMEOUT_S,
        lambda: f"only {len(_read_latencies(out_dir))} of {expected} records reached the handler",
    )
    return _read_latencies(out_dir)  # read again: the last append may have been mid-write


def _read_latencies(out_dir: Path) -> list[float]:
    values: list[float] = []
    for path in out_dir.glob("latency-*.txt"):
        values.extend(float(line) for line in path.read_text().split())
    return values


def _wait_until(
    done: Callable[[], bool], daemon: ManagedProcess, timeout_s: float, failure: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if daemon.exit_code() is not None:
            raise EngineUnavailable(daemon.describe_exit())
        if time.monotonic() > deadline:
            raise RuntimeError(f"{failure()}; {daemon.log_path} ends with:\n{daemon.log_tail()}")
        time.sleep(0.05)
