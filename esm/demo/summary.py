"""The demo's closing summary: what was produced, delivered and committed, and how fast.

Pure: the figures come in, lines of text go out. The verdict (`all_delivered`) is what the
demo's exit status reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from esm.percentiles import percentile


@dataclass(frozen=True)
class DemoResult:
    produced: int
    """Records the broker acknowledged."""
    produce_failures: int
    delivered: int
    """esm_records_delivered_total at the last scrape before the daemon stopped."""
    committed: int | None
    """The consumer group's committed offsets, summed over partitions, after shutdown (None: unread)."""
    consumer_group: str
    active_seconds: float
    """From the first record produced to the last one delivered (or the stop)."""
    invocations: int
    errors: int
    latencies_ms: Sequence[float]
    workdir: Path
    log_names: Sequence[str]
    config_name: str
    interrupted: bool = False


def all_delivered(result: DemoResult) -> bool:
    """Every acknowledged record was delivered and its offset committed; no produce failed."""
    return (
        result.produce_failures == 0
        and result.delivered >= result.produced
        and result.committed == result.produced
    )


def summary_lines(result: DemoResult) -> list[str]:
    ok = all_delivered(result)
    if ok:
        verdict = f"all {result.produced:,} records produced were delivered"
    else:
        verdict = f"NOT everything produced was delivered ({result.delivered:,} of {result.produced:,})"
    lines = [
        f"esm demo {'(stopped early) ' if result.interrupted else ''}summary: {verdict}",
        f"  records produced:   {result.produced:,}"
        + (f" ({result.produce_failures:,} sends failed)" if result.produce_failures else ""),
        f"  records delivered:  {result.delivered:,} (esm_records_delivered_total)",
        f"  offsets committed:  {_committed(result)} (consumer group {result.consumer_group})",
        f"  throughput:         {_throughput(result)}",
        f"  invocations:        {result.invocations:,}",
        f"  errors:             {result.errors:,} (function errors, timeouts, unreachable)",
        f"  end-to-end latency: {_latency(result.latencies_ms)}",
        f"  logs:               {result.workdir}/ ({', '.join(result.log_names)})",
        f"  config:             {result.workdir / result.config_name}",
    ]
    return lines


def _committed(result: DemoResult) -> str:
    return (
        "unknown (could not read the group's offsets)"
        if result.committed is None
        else f"{result.committed:,}"
    )


def _throughput(result: DemoResult) -> str:
    if result.active_seconds <= 0 or result.delivered == 0:
        return "-"
    per_second = result.delivered / result.active_seconds
    return (
        f"{per_second:,.0f} records/s ({result.delivered:,} in {result.active_seconds:.1f} s, "
        "first produce to last delivery)"
    )


def _latency(latencies_ms: Sequence[float]) -> str:
    if not latencies_ms:
        return "- (no records reached the handler)"
    return (
        f"p50 {percentile(latencies_ms, 50):.1f} ms, p99 {percentile(latencies_ms, 99):.1f} ms, "
        f"max {max(latencies_ms):.1f} ms (producer timestamp to handler, {len(latencies_ms):,} records)"
    )
