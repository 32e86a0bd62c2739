from __future__ import annotations

from pathlib import Path

import orjson

from esm.worker.stats import InvocationStats, write_stats_file


def test_counts_the_peak_in_flight_and_finished_invocations() -> None:
    stats = InvocationStats()
    stats.started()
    stats.started()
    stats.finished()
    stats.started()
    stats.finished()
    stats.finished()
    assert (stats.in_flight, stats.max_in_flight, stats.invocations) == (0, 2, 3)


def test_the_file_is_replaced_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    stats = InvocationStats()
    for _ in range(2):
        stats.started()
        stats.finished()
        write_stats_file(path, stats)
    assert orjson.loads(path.read_bytes()) == {"max_in_flight": 1, "invocations": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]
