"""Sweeps for kafka_throughput_latency.py: one figure measured over a range of one setting.

- `rate`: produce-to-handler latency (c) at each produce rate, and the floor (d) at that rate
  right after it (its figures prefixed `floor_`);
- `batch-size`, `processes`: the engine's throughput (b) at each BatchSize / `--processes`, with
  the plain consumer (a) read once per run on the same topic, so every point has a same-run
  baseline.

Each run measures every value once, in an order that rotates from run to run (a busy phase of the
machine then falls on different values); a point's figures are the medians over the runs. The
JSON shape is what benchmarks/charts.py reads: `{"points": [{<setting>: v, "runs": [...],
"median": {...}}], "baseline": {...}}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from esm.embedded import TansuBroker
from kafka_bench.baseline import consume_all
from kafka_bench.dataset import fill_topic
from kafka_bench.engine_throughput import measure_engine
from kafka_bench.latency import measure_floor, measure_latency
from kafka_bench.stats import median_or_none

SWEEP_KINDS = ("rate", "batch-size", "processes")
# The sweep's key in the JSON and the setting's name in each point.
SWEEP_KEYS = {
    "rate": ("latency_by_rate", "rate_per_s"),
    "batch-size": ("throughput_by_batch_size", "batch_size"),
    "processes": ("throughput_by_processes", "processes"),
}


@dataclass(frozen=True)
class Sweep:
    kind: str
    values: tuple[int, ...]


def parse_sweep(text: str) -> Sweep:
    """`KIND=V1,V2,...`, e.g. `rate=100,500,2000,5000`; ValueError says what is wrong."""
    kind, _, values = text.partition("=")
    kind = kind.strip()
    if kind not in SWEEP_KINDS:
        raise ValueError(f"unknown sweep {kind!r}: expected one of {', '.join(SWEEP_KINDS)}")
    try:
        parsed = tuple(int(v) for v in values.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--sweep {text!r}: values must be whole numbers") from None
    if not parsed or min(parsed) < 1:
        raise ValueError(f"--sweep {text!r}: give one or more values of at least 1")
    return Sweep(kind, parsed)


def rotated(values: Sequence[int], run_index: int) -> list[int]:
    """The values in the order run `run_index` (0-based) measures them."""
    shift = run_index % len(values)
    return [*values[shift:], *values[:shift]]


def summarise(
    setting: str, values: Sequence[int], runs: list[dict[int, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Per value: its figures in every run and their medians (figures present in any run)."""
    points = []
    for value in values:
        per_run = [run[value] for run in runs if value in run]
        keys = sorted(
            {key for figures in per_run for key, v in figures.items() if isinstance(v, int | float)}
        )
        median = {key: median_or_none([figures.get(key) for figures in per_run]) for key in keys}
        points.append({setting: value, "runs": per_run, "median": median})
    return points


@dataclass(frozen=True)
class SweepContext:
    broker: TansuBroker
    workdir: Path
    runs: int
    records: int
    partitions: int
    record_bytes: int
    kafka_client: str
    latency_seconds: float
    engine_timeout_s: float
    batch_size: int  # the fixed settings while another one is swept
    processes: int
    say: Callable[[str], None]


def run_sweep(sweep: Sweep, ctx: SweepContext) -> dict[str, Any]:
    _, setting = SWEEP_KEYS[sweep.kind]
    if sweep.kind == "rate":
        return _latency_sweep(sweep, ctx, setting)
    return _throughput_sweep(sweep, ctx, setting)


def _latency_sweep(sweep: Sweep, ctx: SweepContext, setting: str) -> dict[str, Any]:
    runs: list[dict[int, dict[str, Any]]] = []
    for index in range(ctx.runs):
        figures: dict[int, dict[str, Any]] = {}
        for rate in rotated(sweep.values, index):
            ctx.say(f"sweep rate, run {index + 1}: latency at {rate} records/s for {ctx.latency_seconds}s")
            workdir = ctx.workdir / f"sweep-rate-{index}-{rate}"
            workdir.mkdir()
            result = measure_latency(
                ctx.broker.bootstrap,
                f"sweep-latency-{uuid.uuid4().hex[:8]}",
                ctx.partitions,
                workdir,
                rate,
                ctx.latency_seconds,
                ctx.kafka_client,
            )
            floor = measure_floor(
                ctx.broker.bootstrap,
                f"sweep-floor-{uuid.uuid4().hex[:8]}",
                ctx.partitions,
                rate,
                ctx.latency_seconds,
            )
            figures[rate] = {**asdict(result), **{f"floor_{k}": v for k, v in asdict(floor).items()}}
        runs.append(figures)
    fixed = {"partitions": ctx.partitions, "seconds": ctx.latency_seconds}
    return {"fixed": fixed, "points": summarise(setting, sweep.values, runs)}


def _throughput_sweep(sweep: Sweep, ctx: SweepContext, setting: str) -> dict[str, Any]:
    runs: list[dict[int, dict[str, Any]]] = []
    baselines: list[dict[str, Any]] = []
    for index in range(ctx.runs):
        topic = f"sweep-{sweep.kind}-{index}-{uuid.uuid4().hex[:8]}"
        ends = fill_topic(ctx.broker.bootstrap, topic, ctx.partitions, ctx.records, ctx.record_bytes)
        ctx.say(f"sweep {sweep.kind}, run {index + 1}: plain consumer on {ctx.records} records")
        baseline = consume_all(ctx.broker.bootstrap, topic, ctx.partitions, ctx.records)
        baselines.append(
            {
                "records_per_s": baseline.records_per_s,
                "records_per_s_after_first_poll": baseline.records_per_s_after_first_poll,
            }
        )
        figures: dict[int, dict[str, Any]] = {}
        for value in rotated(sweep.values, index):
            batch_size = value if sweep.kind == "batch-size" else ctx.batch_size
            processes = value if sweep.kind == "processes" else ctx.processes
            ctx.say(f"sweep {sweep.kind}, run {index + 1}: BatchSize {batch_size}, --processes {processes}")
            workdir = ctx.workdir / f"sweep-{sweep.kind}-{index}-{value}"
            workdir.mkdir()
            engine = measure_engine(
                ctx.broker.bootstrap,
                topic,
                ends,
                workdir,
                ctx.engine_timeout_s,
                ctx.kafka_client,
                batch_size=batch_size,
                processes=processes,
            )
            figures[value] = {
                "batch_size": batch_size,
                "processes": processes,
                "engine_records_per_s": engine.records_per_s,
                "engine_records_per_s_after_first_commit": engine.records_per_s_after_first_commit,
                "baseline_records_per_s": baseline.records_per_s,
                "engine_to_baseline_ratio": engine.records_per_s / baseline.records_per_s,
            }
        runs.append(figures)
    baseline_median = {
        key: median_or_none([b[key] for b in baselines])
        for key in ("records_per_s", "records_per_s_after_first_poll")
    }
    fixed = {"partitions": ctx.partitions, "records": ctx.records, "record_bytes": ctx.record_bytes}
    if sweep.kind != "batch-size":
        fixed["batch_size"] = ctx.batch_size
    if sweep.kind != "processes":
        fixed["processes"] = ctx.processes
    return {
        "fixed": fixed,
        "points": summarise(setting, sweep.values, runs),
        "baseline": {"runs": baselines, "median": baseline_median},
    }
