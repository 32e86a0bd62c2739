"""Which status reports a poller writes: the decision by table, and the memory of what was written."""

from __future__ import annotations

from typing import Any

import pytest

from esm.status.report_publishing import PublishedReports, Written, reports_to_write, same_report

REFRESH = 2.5
IDLE = {"owner": "a:1", "state": "PROCESSING", "buffered": 0, "checkpoint": "49"}
BUSY = {**IDLE, "buffered": 12}


@pytest.mark.parametrize(
    ("current", "last", "now", "expected"),
    [
        # A shard reported for the first time is written.
        ({"s0": IDLE}, {}, 100.0, {"s0"}),
        # Unchanged and written a second ago: not written again.
        ({"s0": IDLE}, {"s0": Written(IDLE, 99.0)}, 100.0, set()),
        # Changed: written at once, however recently the last one was.
        ({"s0": BUSY}, {"s0": Written(IDLE, 99.9)}, 100.0, {"s0"}),
        # A field added or dropped is a change.
        ({"s0": {**IDLE, "last_error": "x"}}, {"s0": Written(IDLE, 99.9)}, 100.0, {"s0"}),
        # Unchanged but written `refresh` ago: rewritten before it expires.
        ({"s0": IDLE}, {"s0": Written(IDLE, 97.5)}, 100.0, {"s0"}),
        ({"s0": IDLE}, {"s0": Written(IDLE, 97.6)}, 100.0, set()),
        # Only a Kafka report's reported_at moved: not a change...
        (
            {"0": {**IDLE, "reported_at": 100.0}},
            {"0": Written({**IDLE, "reported_at": 99.0}, 99.0)},
            100.0,
            set(),
        ),
        # ...until the refresh, which brings reported_at up to date.
        (
            {"0": {**IDLE, "reported_at": 102.0}},
            {"0": Written({**IDLE, "reported_at": 99.0}, 99.0)},
            102.0,
            {"0"},
        ),
        # A Kafka report with a short group session is rewritten once half of it has passed, so
        # `esm status` never finds a live owner's report older than its session...
        (
            {"0": {**IDLE, "reported_at": 101.0, "session_seconds": 3.0}},
            {"0": Written({**IDLE, "reported_at": 99.5, "session_seconds": 3.0}, 99.5)},
            101.0,
            {"0"},
        ),
        (
            {"0": {**IDLE, "reported_at": 100.9, "session_seconds": 3.0}},
            {"0": Written({**IDLE, "reported_at": 99.5, "session_seconds": 3.0}, 99.5)},
            100.9,
            set(),
        ),
        # ...and a long session changes nothing.
        (
            {"0": {**IDLE, "reported_at": 101.0, "session_seconds": 45.0}},
            {"0": Written({**IDLE, "reported_at": 99.5, "session_seconds": 45.0}, 99.5)},
            101.0,
            set(),
        ),
        # Each shard on its own.
        (
            {"s0": IDLE, "s1": BUSY, "s2": IDLE},
            {"s0": Written(IDLE, 99.0), "s1": Written(IDLE, 99.0)},
            100.0,
            {"s1", "s2"},
        ),
    ],
)
def test_reports_to_write(
    current: dict[str, dict[str, Any]], last: dict[str, Written], now: float, expected: set[str]
) -> None:
    due = reports_to_write(current, last, now, REFRESH)
    assert set(due) == expected
    assert all(due[shard] is current[shard] for shard in due)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (IDLE, dict(IDLE), True),
        (IDLE, BUSY, False),
        ({"in_flight": [{"records": 3}]}, {"in_flight": [{"records": 3}]}, True),
        ({"in_flight": [{"records": 3}]}, {"in_flight": []}, False),
        ({"reported_at": 1.0, "x": 1}, {"reported_at": 2.0, "x": 1}, True),
        ({"reported_at": 1.0}, {}, False),
    ],
)
def test_same_report(a: dict[str, Any], b: dict[str, Any], same: bool) -> None:
    assert same_report(a, b) is same


def test_a_failed_write_stays_due_and_a_shard_that_comes_back_is_written_at_once() -> None:
    published = PublishedReports(REFRESH)
    assert set(published.due("m", {"s0": IDLE, "s1": IDLE}, 100.0)) == {"s0", "s1"}
    # The write failed: nothing is recorded, so both are due again.
    assert set(published.due("m", {"s0": IDLE, "s1": IDLE}, 101.0)) == {"s0", "s1"}
    published.written("m", {"s0": IDLE, "s1": IDLE}, 101.0)
    assert published.due("m", {"s0": IDLE, "s1": IDLE}, 101.5) == {}
    # s1 left this process (its row expires); when it is back, its report is written at once.
    assert published.due("m", {"s0": IDLE}, 102.0) == {}
    assert set(published.due("m", {"s0": IDLE, "s1": IDLE}, 102.5)) == {"s1"}


def test_mappings_are_remembered_apart_and_forgotten_when_they_stop() -> None:
    published = PublishedReports(REFRESH)
    published.written("m1", {"s0": IDLE}, 100.0)
    assert set(published.due("m2", {"s0": IDLE}, 100.5)) == {"s0"}
    published.forget_mappings_except({"m2"})
    assert set(published.due("m1", {"s0": IDLE}, 101.0)) == {"s0"}
