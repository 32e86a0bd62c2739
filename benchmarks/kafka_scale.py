"""Kafka scale: one daemon holding many partitions, against a plain consumer-group member.

    .venv/bin/python benchmarks/kafka_scale.py [--partitions 1000] [--runs 3] [--seconds 20] [--json out]

Each run makes a fresh topic with P partitions and one record in each, then measures, one after
the other on the same topic:
(a) a plain kafka-python group member (subscribe + poll loop) that has read every record: its
    idle CPU over --seconds and its resident memory;
(b) the engine: `esm worker` (no-op handler, 1 environment) and `esm run --processes 1` with one
    mapping on the topic, once every partition's record is committed: idle CPU over --seconds,
    and resident memory of the daemon's process tree and of daemon + worker.
Both use the same consumer settings (Kafka's default fetch wait of 500 ms; the short group
timings the embedded broker needs). Goals: engine tree RSS <= 300 MB, engine idle CPU <= 1.5 x
the plain member's. Medians of the runs; JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median

from kafka_bench.engine import (
    KAFKA_CONSUMER_CONFIG_IDLE,
    REPO_ROOT,
    MappingSpec,
    child_environment,
    require_engine,
    start_daemon,
    start_worker,
    write_config,
)
from kafka_bench.proctree import cpu_seconds, rss_bytes

from esm.demo.children import ChildProcess as ManagedProcess
from esm.embedded import TansuBroker, create_topic
from esm.embedded.topics import OutgoingRecord, committed_offsets, produce

MB = 1024 * 1024
RSS_GOAL_MB = 300
IDLE_CPU_RATIO_GOAL = 1.5
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ScaleRun:
    plain_idle_cpu_percent: float
    plain_rss_mb: float
    engine_idle_cpu_percent: float
    engine_daemon_rss_mb: float
    engine_total_rss_mb: float

    @property
    def idle_cpu_ratio(self) -> float:
        return self.engine_idle_cpu_percent / max(self.plain_idle_cpu_percent, 1e-9)


def _idle_cpu_percent(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - before) / seconds


def _wait(condition: object, what: str, process: ManagedProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not condition():  # type: ignore[operator]
        if process.exit_code() is not None:
            raise RuntimeError(process.describe_exit())
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{what} not reached in {READY_TIMEOUT_S}s; {process.log_path}:\n{process.log_tail()}"
            )
        time.sleep(0.5)


def measure_plain(bootstrap: str, topic: str, workdir: Path, seconds: float) -> tuple[float, float]:
    ready = workdir / "plain-ready"
    member = ManagedProcess(
        "plain member",
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "kafka_bench" / "plain_member.py"),
            bootstrap,
            topic,
            f"plain-{topic}",
            str(ready),
        ],
        workdir / "plain.log",
        cwd=REPO_ROOT,
        env=child_environment({"PYTHONPATH": f"{REPO_ROOT / 'benchmarks'}:{REPO_ROOT}"}),
    )
    try:
        _wait(ready.exists, "plain member ready", member)
        time.sleep(2.0)  # let start-up work settle
        return _idle_cpu_percent(member.pid, seconds), rss_bytes(member.pid) / MB
    finally:
        member.stop()


def measure_engine(
    bootstrap: str, topic: str, partitions: int, workdir: Path, seconds: float, kafka_client: str
) -> tuple[float, float, float]:
    worker, endpoint = start_worker("benchmarks.handlers.noop:handler", workdir, concurrency=1)
    try:
        group = f"engine-{topic}"
        config = write_config(
            workdir,
            MappingSpec(
                bootstrap,
                topic,
                group,
                "bench-noop",
                endpoint,
                consumer_config=KAFKA_CONSUMER_CONFIG_IDLE,
                kafka_client=kafka_client,
            ),
        )
        daemon = start_daemon(config, workdir)
        try:
            _wait(
                lambda: len(committed_offsets(bootstrap, group, topic)) == partitions,
                "all partitions committed",
                daemon,
            )
            time.sleep(2.0)
            cpu = _idle_cpu_percent(daemon.pid, seconds)
            daemon_rss = rss_bytes(daemon.pid) / MB
            return cpu, daemon_rss, daemon_rss + rss_bytes(worker.pid) / MB
        finally:
            daemon.stop()
    finally:
        worker.stop()


def _table(runs: list[ScaleRun], medians: dict[str, float]) -> str:
    columns = [
        ("plain cpu%", "plain_idle_cpu_percent", 2),
        ("plain MB", "plain_rss_mb", 0),
        ("esm cpu%", "engine_idle_cpu_percent", 2),
        ("cpu ratio", "idle_cpu_ratio", 2),
        ("daemon MB", "engine_daemon_rss_mb", 0),
        ("+worker MB", "engine_total_rss_mb", 0),
    ]
    lines = [f"{'run':>6} " + " ".join(f"{title:>11}" for title, _, _ in columns)]
    rows = [(str(i), {**asdict(r), "idle_cpu_ratio": r.idle_cpu_ratio}) for i, r in enumerate(runs, 1)]
    for label, row in [*rows, ("median", medians)]:
        lines.append(f"{label:>6} " + " ".join(f"{row[key]:>11.{digits}f}" for _, key, digits in columns))
    rss_ok = medians["engine_total_rss_mb"] <= RSS_GOAL_MB
    cpu_ok = medians["idle_cpu_ratio"] <= IDLE_CPU_RATIO_GOAL
    lines.append(f"goal daemon+worker RSS <= {RSS_GOAL_MB} MB: {'met' if rss_ok else 'missed'}")
    lines.append(f"goal idle CPU <= {IDLE_CPU_RATIO_GOAL} x plain member: {'met' if cpu_ok else 'missed'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="idle measurement window")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--kafka-client", choices=("kafka-python", "confluent-kafka"), default="kafka-python")
    args = parser.parse_args(argv)
    require_engine()
    runs: list[ScaleRun] = []
    with tempfile.TemporaryDirectory(prefix="esm-scale-") as tmp, TansuBroker() as broker:
        for index in range(1, args.runs + 1):
            workdir = Path(tmp) / f"run{index}"
            workdir.mkdir()
            topic = f"scale-{index}-{uuid.uuid4().hex[:8]}"
            create_topic(broker.bootstrap, topic, args.partitions, timeout_s=120)
            produce(
                broker.bootstrap,
                topic,
                (OutgoingRecord(value=b"x" * 100, partition=p) for p in range(args.partitions)),
            )
            print(f"run {index}: plain member on {args.partitions} partitions", file=sys.stderr, flush=True)
            plain_cpu, plain_rss = measure_plain(broker.bootstrap, topic, workdir, args.seconds)
            print(f"run {index}: engine on {args.partitions} partitions", file=sys.stderr, flush=True)
            engine_cpu, daemon_rss, total_rss = measure_engine(
                broker.bootstrap, topic, args.partitions, workdir, args.seconds, args.kafka_client
            )
            runs.append(ScaleRun(plain_cpu, plain_rss, engine_cpu, daemon_rss, total_rss))
    medians = {key: median(getattr(r, key) for r in runs) for key in asdict(runs[0])}
    medians["idle_cpu_ratio"] = median(r.idle_cpu_ratio for r in runs)
    print(f"engine Kafka client: {args.kafka_client}; baseline: a plain kafka-python group member")
    print(_table(runs, medians))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "partitions": args.partitions,
                    "seconds": args.seconds,
                    "runs": [asdict(r) for r in runs],
                    "median": medians,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
