"""benchmarks/charts.py: which charts a benchmark's JSON gives (pure), and the PNGs it draws."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from charts import Reference, chart_specs, main, render, subtitle

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENVIRONMENT = {
    "machine": "2-core Test CPU",
    "started_utc": "2026-12-07T10:00:00Z",
    "load_average_start": [1.5, 1.0, 0.5],
    "load_average_end": [2.25, 1.0, 0.5],
}


def _latency_point(key: str, x: float, p99s: list[float]) -> dict[str, Any]:
    runs = [{"p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": p99} for p99 in p99s]
    median = {"p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": sorted(p99s)[len(p99s) // 2]}
    return {key: x, "runs": runs, "median": median}


def _throughput_point(key: str, x: int, rates: list[float]) -> dict[str, Any]:
    runs = [{"engine_records_per_s": r, "engine_records_per_s_after_first_commit": 2 * r} for r in rates]
    median = {"engine_records_per_s": sorted(rates)[len(rates) // 2]}  # the steady rate: from the runs
    return {key: x, "runs": runs, "median": median}


REPORT: dict[str, Any] = {
    "environment": ENVIRONMENT,
    "sweeps": {
        "latency_by_rate": {
            "points": [_latency_point("rate_per_s", r, [30.0, 25.0, 40.0]) for r in (100, 500)]
        },
        "throughput_by_batch_size": {
            "fixed": {"processes": 1, "records": 150000},
            "points": [_throughput_point("batch_size", b, [1000.0, 3000.0, 2000.0]) for b in (10, 500)],
            "baseline": {"median": {"records_per_s": 5000.0}},
        },
        "throughput_by_processes": {
            "fixed": {"batch_size": 500},
            "points": [_throughput_point("processes", p, [1000.0]) for p in (1, 2)],
        },
        "latency_by_poll_interval": {
            "points": [_latency_point("poll_interval_s", i, [300.0]) for i in (0.1, 1.0)],
            "baseline": {"median": {"p99_ms": 1000.0}},
        },
        "a_sweep_charts_does_not_know": {"points": [{"x": 1}]},
    },
}


@pytest.mark.parametrize(
    ("name", "labels", "xs", "first_line", "references", "log_x"),
    [
        ("kafka-latency-by-rate", ["p50", "p95", "p99"], [100, 500], [10.0, 10.0], [], True),
        (
            "kafka-throughput-by-batch-size",
            ["esm, from start", "esm, after its 1st commit"],
            [10, 500],
            [2000.0, 2000.0],
            [Reference("plain kafka-python consumer (same runs)", 5000.0)],
            True,
        ),
        (
            "kafka-throughput-by-processes",
            ["esm, from start", "esm, after its 1st commit"],
            [1, 2],
            [1000.0, 1000.0],
            [],
            False,
        ),
        (
            "kinesis-latency-by-poll-interval",
            ["p50", "p95", "p99"],
            [0.1, 1.0],
            [10.0, 10.0],
            [Reference("Lambda-style 1 s poller p99 (same runs)", 1000.0)],
            False,
        ),
    ],
)
def test_each_sweep_gives_its_chart(
    name: str,
    labels: list[str],
    xs: list[float],
    first_line: list[float],
    references: list[Reference],
    log_x: bool,
) -> None:
    specs = {spec.name: spec for spec in chart_specs(REPORT)}
    spec = specs[name]
    assert [s.label for s in spec.series] == labels
    assert spec.series[0].xs == xs
    assert spec.series[0].ys == first_line
    assert spec.references == references
    assert spec.log_x is log_x
    assert "2-core Test CPU, 2026-12-07 10:00:00 UTC" in spec.title
    assert "(ms" in spec.y_label or "(records/s)" in spec.y_label


def test_unknown_sweeps_draw_nothing() -> None:
    assert len(chart_specs(REPORT)) == 4
    assert chart_specs({"runs": []}) == []


def test_a_point_spans_its_runs_and_a_missing_median_is_the_runs_median() -> None:
    specs = {spec.name: spec for spec in chart_specs(REPORT)}
    p99 = specs["kafka-latency-by-rate"].series[2]
    assert (p99.ys, p99.lows, p99.highs) == ([30.0, 30.0], [25.0, 25.0], [40.0, 40.0])
    steady = specs["kafka-throughput-by-batch-size"].series[1]  # no median in the JSON
    assert (steady.ys, steady.lows, steady.highs) == ([4000.0, 4000.0], [2000.0, 2000.0], [6000.0, 6000.0])


def test_a_figure_never_measured_is_left_out() -> None:
    report = {
        "sweeps": {
            "latency_by_rate": {"points": [{"rate_per_s": 100, "runs": [], "median": {"p99_ms": 5.0}}]}
        }
    }
    (spec,) = chart_specs(report)
    assert [s.label for s in spec.series] == ["p99"]


def test_the_plain_consumer_measured_at_each_rate_is_a_dashed_line() -> None:
    runs = [{"p99_ms": 20.0, "floor_p99_ms": floor} for floor in (10.0, 14.0, 12.0)]
    point = {"rate_per_s": 500, "runs": runs, "median": {"p99_ms": 20.0, "floor_p99_ms": 12.0}}
    (spec,) = chart_specs({"sweeps": {"latency_by_rate": {"points": [point]}}})
    engine, floor = spec.series
    assert (engine.label, engine.dashed) == ("p99", False)
    assert (floor.label, floor.dashed) == ("p99, plain consumer (same runs)", True)
    assert (floor.ys, floor.lows, floor.highs) == ([12.0], [10.0], [14.0])


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (ENVIRONMENT, "2-core Test CPU, 2026-12-07 10:00:00 UTC, load average 1.50 to 2.25"),
        ({"machine": "m", "started_utc": "2026-01-01T00:00:00Z"}, "m, 2026-01-01 00:00:00 UTC"),
        (None, "unknown machine, unknown date"),
    ],
)
def test_subtitle_names_machine_date_and_load(environment: dict[str, Any] | None, expected: str) -> None:
    assert subtitle({"environment": environment}) == expected


def test_render_draws_a_png_per_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
    written = render(REPORT, tmp_path / "images")
    assert sorted(p.name for p in written) == [
        "kafka-latency-by-rate.png",
        "kafka-throughput-by-batch-size.png",
        "kafka-throughput-by-processes.png",
        "kinesis-latency-by-poll-interval.png",
    ]
    for path in written:
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_the_command_redraws_from_a_saved_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
    source = tmp_path / "results.json"
    source.write_text(
        json.dumps(
            {"environment": ENVIRONMENT, "sweeps": {"latency_by_rate": REPORT["sweeps"]["latency_by_rate"]}}
        )
    )
    assert main([str(source), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "kafka-latency-by-rate.png").read_bytes().startswith(PNG_SIGNATURE)
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "kafka-latency-by-rate.png")
