"""Pure arithmetic on measurements: rates, percentiles, medians."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def rate(records: int, seconds: float) -> float:
    """Records per second; infinity for a zero duration rather than a division error."""
    return records / seconds if seconds > 0 else math.inf


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median of the values that were measured; None when none were."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
