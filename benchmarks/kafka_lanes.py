"""Kafka ParallelizationFactor: throughput of one partition with a slow function, by lanes.

    .venv/bin/python benchmarks/kafka_lanes.py [--records 24000] [--runs 3] [--factors 1,2,5,10]

Starts its own embedded broker (Tansu). Each run fills a fresh one-partition topic with records
spread over 1,000 keys, then for each ParallelizationFactor runs `esm run` against a function
that takes 20 ms per batch (BatchSize 10), and times the group's committed offset from its first
move to the partition's end. The figure is the rate against ParallelizationFactor 1 in the same
run; the table shows each run and the medians. Goal: 10 lanes at least 7 x one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kafka_bench.engine import (
    EngineUnavailable,
    MappingSpec,
    engine_config,
    require_engine,
    start_daemon,
    start_worker,
    write_checked_config,
)
from kafka_bench.stats import rate

from esm.embedded import OutgoingRecord, TansuBroker, committed_offsets, create_topic, produce
from esm.netutil import free_port

HANDLER = "benchmarks.handlers.sleepy:handler"
BATCH_SIZE = 10
BATCH_SECONDS = 0.02
KEYS = 1000
GOAL = 7.0
COMMIT_POLL_S = 0.05


def _measure(broker: TansuBroker, workdir: Path, records: int, lanes: int) -> float:
    """Records per second through one partition with `lanes` lanes (from the first commit on)."""
    topic = f"lanes-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 1)
    produce(
        broker.bootstrap,
        topic,
        (
            OutgoingRecord(value=b"x" * 100, key=f"key-{n % KEYS}".encode(), partition=0)
            for n in range(records)
        ),
        linger_ms=20,
    )
    worker, endpoint = start_worker(
        HANDLER, workdir, concurrency=10, env={"ESM_BENCH_BATCH_SECONDS": str(BATCH_SECONDS)}
    )
    group = f"g-{topic}"
    spec = MappingSpec(broker.bootstrap, topic, group, "fn", endpoint, batch_size=BATCH_SIZE)
    config = engine_config(f"sqlite:///{(workdir / f'{topic}.sqlite').resolve()}", free_port(), spec)
    config["EventSourceMappings"][0]["ParallelizationFactor"] = lanes
    daemon = start_daemon(write_checked_config(workdir, config), workdir)
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if daemon.exit_code() is not None:
                raise EngineUnavailable(daemon.describe_exit())
            done = committed_offsets(broker.bootstrap, group, topic).get(0, 0)
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done >= records and first is not None:
                return rate(records - first[1], now - first[0])
            time.sleep(COMMIT_POLL_S)
        raise EngineUnavailable(f"{lanes} lanes: {records} records not committed within 600 s")
    finally:
        daemon.stop()
        worker.stop()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records",
        type=int,
        default=24000,
        help="records per run (PF 10 must run long enough that start and tail do not dominate)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--factors", default="1,2,5,10", help="ParallelizationFactor values; 1 comes first")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    args.factors = sorted({1, *(int(f) for f in args.factors.split(","))})
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    runs: list[dict[int, float]] = []
    try:
        require_engine()
        with tempfile.TemporaryDirectory(prefix="esm-lanes-") as tmp, TansuBroker() as broker:
            for run in range(1, args.runs + 1):
                rates = {lanes: _measure(broker, Path(tmp), args.records, lanes) for lanes in args.factors}
                runs.append(rates)
                print(
                    f"[run {run}] " + "  ".join(f"PF {k}: {v:,.0f} rec/s" for k, v in rates.items()),
                    file=sys.stderr,
                )
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ratios = [{lanes: rates[lanes] / rates[1] for lanes in rates} for rates in runs]
    median: dict[str, Any] = {
        str(lanes): {
            "records_per_s": statistics.median(r[lanes] for r in runs),
            "ratio_to_1": statistics.median(r[lanes] for r in ratios),
        }
        for lanes in args.factors
    }
    handler_ms = BATCH_SECONDS * 1000
    print(f"one partition, BatchSize {BATCH_SIZE}, {handler_ms:.0f} ms per batch, {args.records} records")
    print(f"{'ParallelizationFactor':>21}  {'rec/s (median)':>15}  {'x PF 1 (median)':>15}  per run")
    for lanes in args.factors:
        per_run = ", ".join(f"{r[lanes]:.2f}" for r in ratios)
        figures = median[str(lanes)]
        print(f"{lanes:>21}  {figures['records_per_s']:>15,.0f}  {figures['ratio_to_1']:>15.2f}  {per_run}")
    top = max(args.factors)
    print(
        f"goal: PF 10 at least {GOAL:.0f} x PF 1"
        + (f"; measured {median[str(top)]['ratio_to_1']:.2f} x at PF {top}" if top > 1 else "")
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": runs, "ratios": ratios, "median": median}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
