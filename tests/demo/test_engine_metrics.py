from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from esm.demo.engine_metrics import bucket_quantile, parse_snapshot
from esm.metrics import Metrics


def test_snapshot_reads_the_engines_own_metric_families() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.records_delivered.labels("m1").inc(120)
    metrics.offset_lag.labels("m1").set(7)
    metrics.partitions_owned.labels("m1").set(4)
    for outcome, count in {
        "success": 30,
        "function_error": 2,
        "timeout": 1,
        "unreachable": 3,
        "throttled": 5,
    }.items():
        metrics.invocations.labels("orders", outcome).inc(count)
    for _ in range(99):
        metrics.invocation_duration.labels("orders").observe(0.004)
    metrics.invocation_duration.labels("orders").observe(0.2)

    snapshot = parse_snapshot(generate_latest(registry).decode())

    assert snapshot.delivered == 120
    assert snapshot.offset_lag == 7
    assert snapshot.partitions_owned == 4
    assert snapshot.invocations == 41
    assert snapshot.errors == 6  # throttles are backpressure, not errors
    assert snapshot.invoke_p99_seconds == 0.005  # 99 of 100 calls fall in the 5 ms bucket


def test_snapshot_of_an_engine_that_did_nothing_yet() -> None:
    snapshot = parse_snapshot(generate_latest(CollectorRegistry()).decode())
    assert (snapshot.delivered, snapshot.invocations, snapshot.errors) == (0, 0, 0)
    assert snapshot.invoke_p99_seconds is None


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ([(0.01, 50.0), (0.1, 99.0), (math.inf, 100.0)], 0.99, 0.1),
        ([(0.01, 50.0), (0.1, 98.0), (math.inf, 100.0)], 0.99, math.inf),
        ([(0.01, 100.0), (math.inf, 100.0)], 0.5, 0.01),
        ([(0.01, 0.0), (math.inf, 0.0)], 0.99, None),
        ([], 0.99, None),
    ],
)
def test_bucket_quantile(buckets: list[tuple[float, float]], q: float, expected: float | None) -> None:
    assert bucket_quantile(buckets, q) == expected


def test_bucket_quantile_rejects_a_quantile_out_of_range() -> None:
    with pytest.raises(ValueError, match="quantile q must be in"):
        bucket_quantile([(1.0, 1.0)], 1.5)
