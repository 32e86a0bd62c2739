from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esm.demo.summary import DemoResult, all_delivered, percentile, summary_lines


def result(**changes: Any) -> DemoResult:
    fields: dict[str, Any] = {
        "produced": 600,
        "produce_failures": 0,
        "delivered": 600,
        "committed": 600,
        "consumer_group": "g",
        "active_seconds": 3.0,
        "invocations": 150,
        "errors": 0,
        "latencies_ms": [5.0, 10.0, 20.0],
        "workdir": Path("/tmp/esm-demo-x"),
        "log_names": ["daemon.log"],
        "config_name": "esm-demo.yaml",
    }
    return DemoResult(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"delivered": 650}, True),  # at least once: a redelivery counts twice
        ({"delivered": 599}, False),
        ({"committed": 599}, False),
        ({"committed": None}, False),
        ({"produce_failures": 1}, False),
    ],
)
def test_verdict(changes: dict[str, Any], ok: bool) -> None:
    assert all_delivered(result(**changes)) is ok


def test_summary_lines() -> None:
    lines = summary_lines(result())
    assert lines[0] == "esm demo summary: all 600 records produced were delivered"
    assert "  records delivered:  600 (esm_records_delivered_total)" in lines
    assert "  throughput:         200 records/s (600 in 3.0 s, first produce to last delivery)" in lines
    assert any(
        line.startswith("  end-to-end latency: p50 10.0 ms, p99 19.8 ms, max 20.0 ms") for line in lines
    )


def test_summary_says_when_not_everything_arrived() -> None:
    lines = summary_lines(result(delivered=10, committed=10, latencies_ms=[], interrupted=True))
    assert lines[0] == "esm demo (stopped early) summary: NOT everything produced was delivered (10 of 600)"
    assert "  end-to-end latency: - (no records reached the handler)" in lines


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    with pytest.raises(ValueError, match="percentile of no values"):
        percentile([], 50)
