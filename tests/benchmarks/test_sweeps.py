"""benchmarks/kafka_bench/sweeps.py: parsing --sweep, the order of a run, the medians of a point."""

from __future__ import annotations

from typing import Any

import pytest
from kafka_bench.sweeps import Sweep, parse_sweep, rotated, summarise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate=100,500,2000,5000", Sweep("rate", (100, 500, 2000, 5000))),
        ("batch-size=10", Sweep("batch-size", (10,))),
        (" processes=1,2, ", Sweep("processes", (1, 2))),
    ],
)
def test_parse_sweep(text: str, expected: Sweep) -> None:
    assert parse_sweep(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("speed=1,2", "unknown sweep 'speed'"),
        ("rate=", "one or more values"),
        ("rate=0,5", "one or more values"),
        ("rate=1.5", "whole numbers"),
    ],
)
def test_parse_sweep_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sweep(text)


@pytest.mark.parametrize(
    ("run", "order"),
    [(0, [1, 2, 3]), (1, [2, 3, 1]), (2, [3, 1, 2]), (3, [1, 2, 3])],
)
def test_each_run_starts_at_another_value(run: int, order: list[int]) -> None:
    assert rotated([1, 2, 3], run) == order


def test_summarise_keeps_every_run_and_takes_medians_of_numbers() -> None:
    runs: list[dict[int, dict[str, Any]]] = [
        {100: {"p99_ms": 30.0, "records": 10}, 500: {"p99_ms": 8.0, "records": 10}},
        {100: {"p99_ms": 20.0, "records": 10}, 500: {"p99_ms": None, "records": 10}},
        {100: {"p99_ms": 90.0, "records": 10, "note": "text is not a figure"}},
    ]
    points = summarise("rate_per_s", [100, 500], runs)
    assert points[0] == {
        "rate_per_s": 100,
        "runs": [runs[0][100], runs[1][100], runs[2][100]],
        "median": {"p99_ms": 30.0, "records": 10},
    }
    assert points[1]["median"] == {"p99_ms": 8.0, "records": 10}
