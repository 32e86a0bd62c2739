from __future__ import annotations

from pathlib import Path

import pytest

from esm.demo.runner import DemoOptions, option_problem, read_latencies


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (DemoOptions(20, 2000, 4), None),
        (DemoOptions(0, 2000, 4), "--seconds must be greater than 0, got 0"),
        (DemoOptions(5, 0, 4), "--rate must be at least 1 record per second, got 0"),
        (DemoOptions(5, 10, 0), "--partitions must be at least 1, got 0"),
        (DemoOptions(0.05, 10, 1), "--seconds 0.05 at --rate 10 produces no record"),
    ],
)
def test_option_problems_name_the_flag(options: DemoOptions, problem: str | None) -> None:
    assert option_problem(options) == problem


def test_latencies_are_read_from_every_environments_file(tmp_path: Path) -> None:
    (tmp_path / "latency-11.txt").write_text("1.50\n2.00\n")
    (tmp_path / "latency-12.txt").write_text("3.25\n")
    (tmp_path / "unrelated.txt").write_text("99\n")
    assert sorted(read_latencies(tmp_path)) == [1.5, 2.0, 3.25]
