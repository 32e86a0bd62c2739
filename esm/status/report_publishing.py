"""Which shard status reports a poller writes to the store each round: the ones that changed
since it last wrote them, and the unchanged ones again before they expire.

Reports expire (esm.stores.status): a row its owner stops refreshing disappears, which is how
`esm status` tells a live owner from a gone one. Writing every row every second kept that true
at the price of a store write per idle shard per second; here an unchanged row is rewritten only
once `refresh_seconds` have passed since it was written (less than the expiry, so a live owner's
row never lapses). Fields that change on every round without saying anything new (a Kafka
report's `reported_at`, by which `esm status` judges a partition's owner stale against the group
session) are left out of the comparison; the rewrite keeps them within `refresh_seconds` of now,
or within half the session for a report that names one.

`reports_to_write` is the decision (pure); `PublishedReports` remembers what was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Report = Mapping[str, Any]

# Fields that differ on every round whatever happened: not a change by themselves.
VOLATILE_FIELDS = frozenset({"reported_at"})


@dataclass(frozen=True)
class Written:
    report: Report
    at: float  # when it was written (epoch seconds)


def same_report(a: Report, b: Report) -> bool:
    """Equal but for the volatile fields."""
    if a.keys() != b.keys():
        return False
    return all(a[key] == b[key] for key in a if key not in VOLATILE_FIELDS)


def reports_to_write(
    current: Mapping[str, Report], last: Mapping[str, Written], now: float, refresh_seconds: float
) -> dict[str, Report]:
    """The reports of `current` (shard -> report) to write at `now`: new shards, changed reports,
    and unchanged ones last written `refresh_seconds` ago or more."""
    due: dict[str, Report] = {}
    for shard, report in current.items():
        previous = last.get(shard)
        if (
            previous is None
            or now - previous.at >= refresh_after(report, refresh_seconds)
            or not same_report(report, previous.report)
        ):
            due[shard] = report
    return due


def refresh_after(report: Report, refresh_seconds: float) -> float:
    """How old an unchanged report may get before it is rewritten: `refresh_seconds`, or half the
    group session of a report that carries one (`esm status` calls an owner whose report is
    older than its session stale; with a short session.timeout.ms a live idle owner would look
    stale between refreshes otherwise)."""
    session = report.get("session_seconds")
    if isinstance(session, int | float) and session > 0:
        return min(refresh_seconds, session / 2)
    return refresh_seconds


class PublishedReports:
    """What this process last wrote, per mapping and shard."""

    def __init__(self, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        self._written: dict[str, dict[str, Written]] = {}

    def due(self, mapping: str, current: Mapping[str, Report], now: float) -> dict[str, Report]:
        """The reports to write now (see `reports_to_write`). Shards no longer in `current` are
        forgotten: their rows expire, and should one come back its report is written at once."""
        last = self._written.setdefault(mapping, {})
        for shard in [shard for shard in last if shard not in current]:
            del last[shard]
        return reports_to_write(current, last, now, self.refresh_seconds)

    def written(self, mapping: str, reports: Mapping[str, Report], now: float) -> None:
        """`reports` reached the store at `now` (not called when the write failed: they stay due)."""
        last = self._written.setdefault(mapping, {})
        for shard, report in reports.items():
            last[shard] = Written(report, now)

    def forget_mappings_except(self, mappings: set[str]) -> None:
        """Drops what was written for mappings no longer running."""
        for mapping in [mapping for mapping in self._written if mapping not in mappings]:
            del self._written[mapping]
