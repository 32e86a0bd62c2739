"""The throughput benchmark's window at the function: pure arithmetic on the batch log."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka_bench.engine_throughput import batch_window, read_batch_logs


@pytest.mark.parametrize(
    ("batches", "window"),
    [
        ([], None),
        ([(5.0, 500)], None),  # one batch: no interval to divide by
        ([(1.0, 500), (3.0, 200)], (2.0, 200)),  # the first batch's records came at its start
        ([(3.0, 200), (1.0, 500), (2.0, 300)], (2.0, 500)),  # any order: by arrival
    ],
)
def test_batch_window(batches: list[tuple[float, int]], window: tuple[float, int] | None) -> None:
    assert batch_window(batches) == window


def test_batch_logs_of_every_environment_are_read(tmp_path: Path) -> None:
    (tmp_path / "batches-11.txt").write_text("1.500000 500\n2.000000 20\n")
    (tmp_path / "batches-12.txt").write_text("1.750000 7\n")
    (tmp_path / "other.txt").write_text("not a batch log\n")
    assert sorted(read_batch_logs(tmp_path)) == [(1.5, 500), (1.75, 7), (2.0, 20)]
