"""Pure arithmetic on measurements: rates, percentiles, medians."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def rate(records: int, seconds: float) -> float:
    """Records per second; infinity for a zero duration rather than a division error."""
    return records / seconds if seconds > 0 else math.inf


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median of the values that were measured; None when none were."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
