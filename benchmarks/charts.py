"""PNG charts from the JSON the benchmarks write (`--json`), so a chart can be redrawn later.

    .venv/bin/python benchmarks/charts.py results.json [more.json ...] -o docs/images/benchmarks

Draws one PNG per sweep found in each file (`sweeps` in the JSON of kafka_throughput_latency.py
and kinesis_latency.py): Kafka latency percentiles against produce rate, Kafka throughput
against BatchSize and against `--processes`, Kinesis latency against PollingIntervalInSeconds.
Each point is the median of the runs; the bars span the runs' lowest and highest figure. Needs
matplotlib (the `bench` extra: `pip install -e ".[bench]"`).

`chart_specs` (what to draw, from the JSON) is pure; `draw` is the only part that needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PERCENTILES = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))


@dataclass(frozen=True)
class Series:
    label: str
    xs: list[float]
    ys: list[float]  # medians of the runs
    lows: list[float] = field(default_factory=list)  # the runs' lowest (empty: no spread drawn)
    highs: list[float] = field(default_factory=list)
    dashed: bool = False  # a baseline measured beside the engine in the same runs


@dataclass(frozen=True)
class Reference:
    """A horizontal line: a baseline measured in the same runs."""

    label: str
    y: float


@dataclass(frozen=True)
class ChartSpec:
    name: str  # the PNG's file name without .png
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    references: list[Reference] = field(default_factory=list)
    log_x: bool = False
    log_y: bool = False  # for tails that span orders of magnitude
    integer_x: bool = False


# -- what to draw (pure) -------------------------------------------------------------------------


def subtitle(report: Mapping[str, Any]) -> str:
    """Machine, date and load: the figures mean little without them."""
    env = report.get("environment") or {}
    machine = env.get("machine", "unknown machine")
    date = str(env.get("started_utc", "unknown date")).replace("T", " ").replace("Z", " UTC")
    load = env.get("load_average_start")
    load_end = env.get("load_average_end")
    text = f"{machine}, {date}"
    if load:
        text += f", load average {load[0]:.2f}"
        if load_end:
            text += f" to {load_end[0]:.2f}"
    return text


def _figure_series(
    points: Sequence[Mapping[str, Any]], x_key: str, figure: str, label: str, dashed: bool = False
) -> Series | None:
    """One line: each point's median `figure` and the spread of its runs; None if never measured."""
    xs: list[float] = []
    ys: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    for point in points:
        values = [run[figure] for run in point.get("runs", []) if run.get(figure) is not None]
        median = point.get("median", {}).get(figure)
        if median is None and values:
            median = statistics.median(values)
        if median is None:
            continue
        xs.append(float(point[x_key]))
        ys.append(float(median))
        lows.append(float(min(values, default=median)))
        highs.append(float(max(values, default=median)))
    return Series(label, xs, ys, lows, highs, dashed) if xs else None


def _present(series: Sequence[Series | None]) -> list[Series]:
    return [s for s in series if s is not None]


def _fixed_settings(sweep: Mapping[str, Any], template: str) -> str:
    """The sweep's fixed settings (its "fixed" mapping) in `template`; "" when one is missing
    (JSON written before the benchmark recorded them)."""
    try:
        return template.format(**(sweep.get("fixed") or {}))
    except KeyError:
        return ""


def _latency_by_rate(sweep: Mapping[str, Any], sub: str) -> ChartSpec:
    points = sweep["points"]
    fixed = _fixed_settings(sweep, ", {partitions} partitions, {seconds:g} s per point")
    return ChartSpec(
        name="kafka-latency-by-rate",
        title=f"Kafka produce-to-handler latency against produce rate{fixed}\n{sub}",
        x_label="produce rate (records/s, log scale)",
        y_label="latency (ms, log scale)",
        series=_present(
            [
                *(_figure_series(points, "rate_per_s", key, label) for key, label in PERCENTILES),
                _figure_series(
                    points, "rate_per_s", "floor_p99_ms", "p99, plain consumer (same runs)", dashed=True
                ),
            ]
        ),
        log_x=True,
        log_y=True,
    )


def _throughput(sweep: Mapping[str, Any], sub: str, x_key: str) -> ChartSpec:
    points = sweep["points"]
    by_batch = x_key == "batch_size"
    baseline = (sweep.get("baseline") or {}).get("median", {}).get("records_per_s")
    settings = sweep.get("fixed") or {}
    fixed = (
        f"--processes {settings.get('processes', '?')}"
        if by_batch
        else f"BatchSize {settings.get('batch_size', '?')}"
    )
    if "records" in settings:
        fixed += f", {settings['records']:,} records"
    return ChartSpec(
        name="kafka-throughput-by-batch-size" if by_batch else "kafka-throughput-by-processes",
        title=(
            f"Kafka throughput (no-op function) against {'BatchSize' if by_batch else '--processes'}"
            f", {fixed}\n{sub}"
        ),
        x_label="BatchSize (records, log scale)" if by_batch else "esm run --processes",
        y_label="throughput (records/s)",
        series=_present(
            [
                _figure_series(points, x_key, "engine_records_per_s", "esm, from start"),
                _figure_series(
                    points, x_key, "engine_records_per_s_after_first_commit", "esm, after its 1st commit"
                ),
            ]
        ),
        references=(
            [Reference("plain kafka-python consumer (same runs)", float(baseline))]
            if baseline is not None
            else []
        ),
        log_x=by_batch,
        integer_x=not by_batch,
    )


def _latency_by_poll_interval(sweep: Mapping[str, Any], sub: str) -> ChartSpec:
    points = sweep["points"]
    baseline = (sweep.get("baseline") or {}).get("median", {}).get("p99_ms")
    fixed = _fixed_settings(sweep, ", {shards} shards, {rate_per_s} records/s")
    return ChartSpec(
        name="kinesis-latency-by-poll-interval",
        title=f"Kinesis put-to-handler latency against PollingIntervalInSeconds{fixed}\n{sub}",
        x_label="PollingIntervalInSeconds (s)",
        y_label="latency (ms)",
        series=_present(
            [_figure_series(points, "poll_interval_s", key, label) for key, label in PERCENTILES]
        ),
        references=(
            [Reference("Lambda-style 1 s poller p99 (same runs)", float(baseline))]
            if baseline is not None
            else []
        ),
    )


_CHARTS: dict[str, Callable[[Mapping[str, Any], str], ChartSpec]] = {
    "latency_by_rate": _latency_by_rate,
    "throughput_by_batch_size": lambda sweep, sub: _throughput(sweep, sub, "batch_size"),
    "throughput_by_processes": lambda sweep, sub: _throughput(sweep, sub, "processes"),
    "latency_by_poll_interval": _latency_by_poll_interval,
}


def chart_specs(report: Mapping[str, Any]) -> list[ChartSpec]:
    """The charts a benchmark's JSON has data for, in the order of its sweeps."""
    sub = subtitle(report)
    specs = []
    for kind, sweep in (report.get("sweeps") or {}).items():
        if kind in _CHARTS and sweep.get("points"):
            spec = _CHARTS[kind](sweep, sub)
            if spec.series:
                specs.append(spec)
    return specs


# -- drawing (matplotlib) ------------------------------------------------------------------------


def draw(spec: ChartSpec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    try:
        for series in spec.series:
            below = [y - low for y, low in zip(series.ys, series.lows, strict=True)]
            above = [high - y for y, high in zip(series.ys, series.highs, strict=True)]
            axes.errorbar(
                series.xs,
                series.ys,
                yerr=[below, above] if series.lows else None,
                marker="o",
                capsize=3,
                label=series.label,
                linestyle="--" if series.dashed else "-",
            )
        for reference in spec.references:
            axes.axhline(reference.y, linestyle="--", color="grey", label=reference.label)
        if spec.log_x:
            axes.set_xscale("log")
            axes.xaxis.set_major_formatter(ScalarFormatter())
            axes.set_xticks(sorted({x for s in spec.series for x in s.xs}))
        if spec.integer_x:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if spec.log_y:
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(ScalarFormatter())
            # Within less than a decade matplotlib labels the minor ticks too, as 6x10^1.
            axes.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        else:
            axes.set_ylim(bottom=0)
            axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        axes.set_title(spec.title, fontsize=10)
        axes.set_xlabel(spec.x_label)
        axes.set_ylabel(spec.y_label)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def render(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Every chart of one benchmark's JSON as `out_dir/<name>.png`; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in chart_specs(report):
        path = out_dir / f"{spec.name}.png"
        draw(spec, path)
        written.append(path)
    return written


def save_report(
    report: Mapping[str, Any], json_path: Path | None, charts_dir: Path | None, say: Callable[[str], None]
) -> None:
    """A benchmark's ending: its JSON to `json_path` and its charts into `charts_dir` (each if given)."""
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        say(f"wrote {json_path}")
    if charts_dir is not None:
        for path in render(report, charts_dir):
            say(f"drew {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("json", type=Path, nargs="+", help="a benchmark's --json output")
    parser.add_argument("-o", "--out", type=Path, default=Path("."), help="directory for the PNGs")
    args = parser.parse_args(argv)
    for source in args.json:
        written = render(json.loads(source.read_text()), args.out)
        if not written:
            print(f"{source}: no sweeps to chart (run the benchmark with a sweep option)", file=sys.stderr)
        for path in written:
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
