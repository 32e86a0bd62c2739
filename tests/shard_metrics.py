"""ShardMetrics for unit tests: each child a `Count` that keeps its value, so a test can read it."""

from __future__ import annotations

import dataclasses

from esm.shard.metrics import ShardMetrics


class Count:
    """A metric child that keeps its value (inc, observe and set)."""

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def observe(self, amount: float) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


def counting_metrics() -> tuple[ShardMetrics, dict[str, Count]]:
    """ShardMetrics whose children are Counts, and those Counts by field name."""
    counts = {field.name: Count() for field in dataclasses.fields(ShardMetrics)}
    return ShardMetrics(**counts), counts


def metrics() -> ShardMetrics:
    return counting_metrics()[0]
