"""What the demo shows of the daemon: a few figures read from its Prometheus /metrics page.

`parse_snapshot` is pure (text in, figures out); `scrape` does the HTTP GET. Figures are summed
over label values (mappings, functions), which for the demo's one mapping is that mapping.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# Outcomes counted as errors: the function failed or could not be reached. Throttles are
# backpressure, not errors (as in Lambda).
ERROR_OUTCOMES = frozenset({"function_error", "timeout", "unreachable"})


@dataclass(frozen=True)
class EngineSnapshot:
    delivered: int
    """esm_records_delivered_total: records whose invocation succeeded and were checkpointed."""
    offset_lag: int
    """esm_offset_lag: records in the topic not yet checkpointed."""
    invocations: int
    """esm_invocations_total, every outcome."""
    errors: int
    """esm_invocations_total with outcome function_error, timeout or unreachable."""
    partitions_owned: int
    """esm_partitions_owned."""
    invoke_p99_seconds: float | None
    """Upper bound of the histogram bucket holding the 99th percentile invoke duration (None: no calls)."""


def parse_snapshot(text: str) -> EngineSnapshot:
    totals: dict[str, float] = {}
    outcomes: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            totals[name] = totals.get(name, 0.0) + value
            if name == "esm_invocations_total":
                outcome = labels.get("outcome", "")
                outcomes[outcome] = outcomes.get(outcome, 0.0) + value
            elif name == "esm_invocation_duration_seconds_bucket":
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
    return EngineSnapshot(
        delivered=int(totals.get("esm_records_delivered_total", 0.0)),
        offset_lag=int(totals.get("esm_offset_lag", 0.0)),
        invocations=int(sum(outcomes.values())),
        errors=int(sum(v for outcome, v in outcomes.items() if outcome in ERROR_OUTCOMES)),
        partitions_owned=int(totals.get("esm_partitions_owned", 0.0)),
        invoke_p99_seconds=bucket_quantile(buckets.items(), 0.99),
    )


def bucket_quantile(cumulative_buckets: Iterable[tuple[float, float]], q: float) -> float | None:
    """The smallest bucket bound whose cumulative count reaches q of all observations.

    None when nothing was observed; infinity when the quantile lies above the largest finite bound.
    """
    if not 0 < q <= 1:
        raise ValueError(f"quantile q must be in (0, 1], got {q}")
    ordered = sorted(cumulative_buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    needed = q * ordered[-1][1]
    for bound, count in ordered:
        if count >= needed:
            return bound
    return math.inf  # unreachable: the last (+Inf) bucket holds every observation


def scrape(url: str, timeout_s: float = 1.0) -> EngineSnapshot | None:
    """The daemon's figures now, or None when the page cannot be read (starting, stopped)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body: bytes = response.read()
    except (urllib.error.URLError, OSError):
        return None
    return parse_snapshot(body.decode("utf-8", errors="replace"))
