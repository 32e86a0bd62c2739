"""Kafka throughput and latency: the engine against a plain kafka-python consumer.

    .venv/bin/python benchmarks/kafka_throughput_latency.py [--records N] [--runs 3] [--json out]

Starts its own embedded broker (Tansu). Each run: a fresh 4-partition topic with N records of
100 bytes, then (a) baseline: one plain KafkaConsumer reads them all; (b) engine: `esm run` with
a no-op function, timed until the group's committed offsets reach every partition's end;
(c) latency: produce-to-handler latency at a fixed rate on a fresh topic. Prints a table of the
runs and their medians; --json writes every figure. With --sweep (e.g. `--sweep rate=100,500,2000,5000`
`--sweep batch-size=100,500,2000` `--sweep processes=1,2`) it measures those sweeps instead, and
--charts DIR draws them (benchmarks/charts.py). See benchmarks/README.md.
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
from typing import Any

from charts import save_report
from kafka_bench import environment
from kafka_bench.baseline import BaselineResult, consume_all
from kafka_bench.dataset import fill_topic
from kafka_bench.engine import EngineUnavailable, require_engine
from kafka_bench.engine_throughput import EngineResult, measure_engine
from kafka_bench.latency import LatencyResult, measure_floor, measure_latency
from kafka_bench.stats import median_or_none
from kafka_bench.sweeps import SWEEP_KEYS, Sweep, SweepContext, parse_sweep, run_sweep

from esm.embedded import TansuBroker

PARTITIONS = 4
RECORD_BYTES = 100
PARTS = ("baseline", "engine", "latency", "floor")
RATIO_GOAL = 0.8


@dataclass
class RunResult:
    baseline: BaselineResult | None = None
    engine: EngineResult | None = None
    latency: LatencyResult | None = None
    floor: LatencyResult | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.engine is None:
            return None
        return self.engine.records_per_s / self.baseline.records_per_s

    @property
    def steady_ratio(self) -> float | None:
        """Both rates without start-up (process start and group join for the engine)."""
        if self.baseline is None or self.engine is None:
            return None
        engine = self.engine.records_per_s_after_first_commit
        return None if engine is None else engine / self.baseline.records_per_s_after_first_poll

    @property
    def function_ratio(self) -> float | None:
        """The engine's rate between the first and the last batch at the function, against the
        baseline's after its first non-empty poll: the issue's measure."""
        if self.baseline is None or self.engine is None:
            return None
        engine = self.engine.records_per_s_at_function
        return None if engine is None else engine / self.baseline.records_per_s_after_first_poll

    def figures(self) -> dict[str, float | None]:
        """The numbers that get a median across runs."""
        baseline, engine, latency, floor = self.baseline, self.engine, self.latency, self.floor
        return {
            "baseline_records_per_s": _of(baseline, "records_per_s"),
            "baseline_records_per_s_after_first_poll": _of(baseline, "records_per_s_after_first_poll"),
            "engine_records_per_s": _of(engine, "records_per_s"),
            "engine_records_per_s_after_first_commit": _of(engine, "records_per_s_after_first_commit"),
            "engine_records_per_s_at_function": _of(engine, "records_per_s_at_function"),
            "daemon_cpu_us_per_record": _of(engine, "daemon_cpu_us_per_record"),
            "worker_cpu_us_per_record": _of(engine, "worker_cpu_us_per_record"),
            "engine_to_baseline_ratio": self.ratio,
            "steady_engine_to_baseline_ratio": self.steady_ratio,
            "function_engine_to_baseline_ratio": self.function_ratio,
            "latency_p50_ms": _of(latency, "p50_ms"),
            "latency_p95_ms": _of(latency, "p95_ms"),
            "latency_p99_ms": _of(latency, "p99_ms"),
            "floor_p50_ms": _of(floor, "p50_ms"),
            "floor_p99_ms": _of(floor, "p99_ms"),
            "latency_sent_per_s": _of(latency, "sent_per_s"),
            "latency_invocations": _of(latency, "invocations"),
            "daemon_cpu_ms_per_invocation": _of(latency, "daemon_cpu_ms_per_invocation"),
            "worker_cpu_ms_per_invocation": _of(latency, "worker_cpu_ms_per_invocation"),
            "floor_sent_per_s": _of(floor, "sent_per_s"),
        }


def _of(part: object | None, figure: str) -> float | None:
    """A part's figure, or None when the run did not measure that part."""
    if part is None:
        return None
    value: float | None = getattr(part, figure)
    return value


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="records per throughput run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write all runs and medians here")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--kafka-client",
        choices=("kafka-python", "confluent-kafka"),
        default="kafka-python",
        help="the engine's Kafka client (the baseline is always plain kafka-python)",
    )
    parser.add_argument("--latency-rate", type=int, default=500, help="records/s during the latency run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=500, help="the mapping's BatchSize in (b)")
    parser.add_argument("--processes", type=int, default=1, help="`esm run --processes` in (b)")
    parser.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KIND=V1,V2,...",
        help="instead of the runs: rate=... (latency), batch-size=... / processes=... (throughput)",
    )
    parser.add_argument(
        "--charts", type=Path, default=None, help="draw the sweeps' PNG charts into this directory"
    )
    parser.add_argument(
        "--engine-timeout",
        type=float,
        default=None,
        help="seconds for (b) to commit everything (default scales with N)",
    )
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        parser.error(f"--parts: expected a comma-separated subset of {','.join(PARTS)}, got {args.parts!r}")
    if args.records < 1 or args.runs < 1:
        parser.error("--records and --runs must be at least 1")
    args.parts = parts
    try:
        args.sweep = [parse_sweep(text) for text in args.sweep]
    except ValueError as error:
        parser.error(str(error))
    return args


def _one_run(args: argparse.Namespace, broker: TansuBroker, index: int, workdir: Path) -> RunResult:
    result = RunResult()
    topic = f"bench-{index}-{uuid.uuid4().hex[:8]}"
    needs_data = "baseline" in args.parts or "engine" in args.parts
    ends = fill_topic(broker.bootstrap, topic, PARTITIONS, args.records, RECORD_BYTES) if needs_data else {}
    if "baseline" in args.parts:
        _say(f"run {index}: (a) baseline consumer on {args.records} records")
        result.baseline = consume_all(broker.bootstrap, topic, PARTITIONS, args.records)
    if "engine" in args.parts:
        _say(f"run {index}: (b) esm run on {args.records} records")
        engine_dir = workdir / f"run{index}-engine"
        engine_dir.mkdir()
        timeout = args.engine_timeout or max(120.0, args.records / 2000)
        result.engine = measure_engine(
            broker.bootstrap,
            topic,
            ends,
            engine_dir,
            timeout,
            args.kafka_client,
            batch_size=args.batch_size,
            processes=args.processes,
        )
    if "latency" in args.parts:
        _say(f"run {index}: (c) latency at {args.latency_rate} records/s for {args.latency_seconds}s")
        latency_dir = workdir / f"run{index}-latency"
        latency_dir.mkdir()
        result.latency = measure_latency(
            broker.bootstrap,
            f"{topic}-latency",
            PARTITIONS,
            latency_dir,
            args.latency_rate,
            args.latency_seconds,
            args.kafka_client,
        )
    if "floor" in args.parts:
        _say(f"run {index}: (d) floor: a plain consumer at {args.latency_rate} records/s")
        result.floor = measure_floor(
            broker.bootstrap, f"{topic}-floor", PARTITIONS, args.latency_rate, args.latency_seconds
        )
    return result


def _medians(runs: list[RunResult]) -> dict[str, float | None]:
    keys = runs[0].figures().keys()
    return {key: median_or_none([run.figures()[key] for run in runs]) for key in keys}


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table(runs: list[RunResult], medians: dict[str, float | None], rate: int) -> str:
    header = (
        f"{'run':>6} {'baseline rec/s':>15} {'steady':>9} {'engine rec/s':>13} {'steady':>9} "
        f"{'at fn':>9} {'ratio':>6} {'steady':>7} {'at fn':>6} {'us/rec':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'floor p50':>9} {'p99':>5} {'sent/s':>7} {'invocations':>11} "
        f"{'ms/inv daemon':>13} {'worker':>6}"
    )
    rows = [header]
    labelled: list[tuple[str, dict[str, float | None]]] = [
        (str(i), r.figures()) for i, r in enumerate(runs, 1)
    ]
    labelled.append(("median", medians))
    columns = [
        ("baseline_records_per_s", 15, 0),
        ("baseline_records_per_s_after_first_poll", 9, 0),
        ("engine_records_per_s", 13, 0),
        ("engine_records_per_s_after_first_commit", 9, 0),
        ("engine_records_per_s_at_function", 9, 0),
        ("engine_to_baseline_ratio", 6, 2),
        ("steady_engine_to_baseline_ratio", 7, 2),
        ("function_engine_to_baseline_ratio", 6, 2),
        ("daemon_cpu_us_per_record", 7, 2),
        ("latency_p50_ms", 7, 1),
        ("latency_p95_ms", 7, 1),
        ("latency_p99_ms", 7, 1),
        ("floor_p50_ms", 9, 1),
        ("floor_p99_ms", 5, 1),
        ("latency_sent_per_s", 7, 0),
        ("latency_invocations", 11, 0),
        ("daemon_cpu_ms_per_invocation", 13, 2),
        ("worker_cpu_ms_per_invocation", 6, 2),
    ]
    for label, figures in labelled:
        cells = [f"{_fmt(figures[key], digits):>{width}}" for key, width, digits in columns]
        rows.append(f"{label:>6} " + " ".join(cells))
    for key, what in (
        ("engine_to_baseline_ratio", "from start"),
        ("steady_engine_to_baseline_ratio", "steady state (from the first commit)"),
        ("function_engine_to_baseline_ratio", "first to last batch at the function"),
    ):
        ratio = medians[key]
        if ratio is not None:
            verdict = "meets" if ratio >= RATIO_GOAL else "misses"
            rows.append(f"engine/baseline median, {what}: {ratio:.2f} ({verdict} the goal of {RATIO_GOAL})")
    rows.extend(_short_producers(runs, rate))
    return "\n".join(rows)


# Below this share of the rate asked for, the producer fell behind its schedule: the latencies
# then describe a loaded machine at a lower rate, not the rate in the table's title.
SENT_RATE_WARNING = 0.95


def _short_producers(runs: list[RunResult], rate: int) -> list[str]:
    lines = []
    for index, run in enumerate(runs, 1):
        for part, result in (("(c) latency", run.latency), ("(d) floor", run.floor)):
            if result and result.sent_per_s is not None and result.sent_per_s < SENT_RATE_WARNING * rate:
                lines.append(
                    f"run {index} {part}: the producer reached {result.sent_per_s:,.0f} of "
                    f"{rate:,} records/s: the machine could not produce at that rate"
                )
    return lines


def _report(args: argparse.Namespace, runs: list[RunResult], log_path: Path) -> dict[str, Any]:
    return {
        "settings": {
            "records": args.records,
            "kafka_client": args.kafka_client,
            "runs": args.runs,
            "parts": list(args.parts),
            "partitions": PARTITIONS,
            "record_bytes": RECORD_BYTES,
            "latency_rate_per_s": args.latency_rate,
            "latency_seconds": args.latency_seconds,
            "batch_size": args.batch_size,
            "processes": args.processes,
            "broker": "tansu (embedded, memory storage)",
            "broker_log": str(log_path),
        },
        "runs": [
            {
                "baseline": asdict(run.baseline) if run.baseline else None,
                "engine": asdict(run.engine) if run.engine else None,
                "latency": asdict(run.latency) if run.latency else None,
                "floor": asdict(run.floor) if run.floor else None,
                "figures": run.figures(),
            }
            for run in runs
        ],
        "median": _medians(runs),
    }


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sweeps(args: argparse.Namespace, broker: TansuBroker, workdir: Path) -> dict[str, Any]:
    context = SweepContext(
        broker=broker,
        workdir=workdir,
        runs=args.runs,
        records=args.records,
        partitions=PARTITIONS,
        record_bytes=RECORD_BYTES,
        kafka_client=args.kafka_client,
        latency_seconds=args.latency_seconds,
        engine_timeout_s=args.engine_timeout or max(120.0, args.records / 2000),
        batch_size=args.batch_size,
        processes=args.processes,
        say=_say,
    )
    return {SWEEP_KEYS[sweep.kind][0]: run_sweep(sweep, context) for sweep in args.sweep}


def _sweep_table(sweeps: list[Sweep], results: dict[str, Any]) -> str:
    rows = []
    for sweep in sweeps:
        key, setting = SWEEP_KEYS[sweep.kind]
        figures = (
            (
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "floor_p99_ms",
                "sent_per_s",
                "daemon_cpu_ms_per_invocation",
                "worker_cpu_ms_per_invocation",
            )
            if sweep.kind == "rate"
            else (
                "engine_records_per_s",
                "engine_records_per_s_after_first_commit",
                "engine_to_baseline_ratio",
            )
        )
        rows.append(f"{key} (medians of the runs): {setting} " + " ".join(figures))
        for point in results[key]["points"]:
            cells = " ".join(_fmt(point["median"].get(f), 2 if "ratio" in f else 1) for f in figures)
            rows.append(f"  {point[setting]:>6} {cells}")
        baseline = results[key].get("baseline")
        if baseline:
            rows.append(f"  plain consumer: {_fmt(baseline['median']['records_per_s'])} records/s")
    return "\n".join(rows)


def _main_sweeps(args: argparse.Namespace) -> int:
    env = environment.started()
    with tempfile.TemporaryDirectory(prefix="esm-bench-") as tmp, TansuBroker() as broker:
        _say(f"broker on {broker.bootstrap} (log {broker.log_path})")
        results = _sweeps(args, broker, Path(tmp))
    report = {
        "environment": environment.finished(env),
        "settings": {
            "records": args.records,
            "kafka_client": args.kafka_client,
            "runs": args.runs,
            "partitions": PARTITIONS,
            "record_bytes": RECORD_BYTES,
            "latency_seconds": args.latency_seconds,
            "batch_size": args.batch_size,
            "processes": args.processes,
            "broker": "tansu (embedded, memory storage)",
        },
        "sweeps": results,
    }
    print(_sweep_table(args.sweep, results))
    save_report(report, args.json, args.charts, _say)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.sweep:
        try:
            require_engine()
            return _main_sweeps(args)
        except EngineUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        if "engine" in args.parts or "latency" in args.parts:
            require_engine()
        with tempfile.TemporaryDirectory(prefix="esm-bench-") as tmp, TansuBroker() as broker:
            workdir = Path(tmp)
            _say(f"broker on {broker.bootstrap} (log {broker.log_path})")
            runs = [_one_run(args, broker, i, workdir) for i in range(1, args.runs + 1)]
            report = _report(args, runs, broker.log_path)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"engine Kafka client: {args.kafka_client}; baseline: plain kafka-python consumer")
    print(_table(runs, report["median"], args.latency_rate))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        _say(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
