"""When esm says a source is down, still down, and back: table-driven, with the clock passed in."""

from __future__ import annotations

import logging

import pytest

from esm.sources.outage_notices import Notice, OutageLog, OutageNotices, Said

DOWN, UP = False, True


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        pytest.param([(UP, 0), (UP, 100)], [None, None], id="always reachable: nothing"),
        pytest.param(
            [(DOWN, 0), (DOWN, 1), (UP, 1.5)], [None, None, None], id="a blip shorter than confirm_after"
        ),
        pytest.param(
            [(DOWN, 0), (DOWN, 1.9), (DOWN, 2.0), (DOWN, 3)],
            [None, None, Said(Notice.DOWN, 2.0), None],
            id="down once confirmed, said once",
        ),
        pytest.param(
            [(DOWN, 0), (DOWN, 2), (DOWN, 61), (DOWN, 62), (DOWN, 122)],
            [None, Said(Notice.DOWN, 2), None, Said(Notice.STILL_DOWN, 62), Said(Notice.STILL_DOWN, 122)],
            id="then once a minute",
        ),
        pytest.param(
            [(DOWN, 0), (DOWN, 5), (UP, 9), (UP, 10)],
            [None, Said(Notice.DOWN, 5), Said(Notice.BACK, 9), None],
            id="back said once",
        ),
        pytest.param(
            [(DOWN, 0), (DOWN, 5), (UP, 9), (DOWN, 10), (DOWN, 11), (DOWN, 12)],
            [None, Said(Notice.DOWN, 5), Said(Notice.BACK, 9), None, None, Said(Notice.DOWN, 2)],
            id="a second outage starts over",
        ),
    ],
)
def test_notices(observations: list[tuple[bool, float]], expected: list[Said | None]) -> None:
    notices = OutageNotices(confirm_after=2.0, repeat_every=60.0)
    assert [notices.observe(reachable, now) for reachable, now in observations] == expected


def test_an_attempt_that_took_long_to_fail_counts_from_its_start() -> None:
    notices = OutageNotices(confirm_after=2.0)
    assert notices.observe(DOWN, now=13.0, since=10.0) == Said(Notice.DOWN, 3.0)
    assert notices.down
    assert notices.observe(UP, now=20.0) == Said(Notice.BACK, 10.0)
    assert not notices.down


def test_without_repeats_a_spell_is_said_once() -> None:
    notices = OutageNotices(confirm_after=12.0, repeat_every=float("inf"))
    said = [notices.observe(DOWN, float(now)) for now in range(0, 1000, 5)]
    assert [s for s in said if s is not None] == [Said(Notice.DOWN, 15.0)]


def test_an_outage_log_says_the_failure_then_once_a_minute_then_the_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    outage = OutageLog(logging.getLogger("esm.test"), "read the store", clock=lambda: clock[0])
    for second in range(0, 130, 1):  # a failure every second for over two minutes
        clock[0] = float(second)
        outage.failed("refused")
    clock[0] = 131.0
    outage.succeeded()
    outage.succeeded()
    assert [record.getMessage() for record in caplog.records] == [
        "cannot read the store: refused",
        "still cannot read the store after 60s: refused",
        "still cannot read the store after 120s: refused",
        "can read the store again after 131s",
    ]
