"""The retry of a start-up step SQLite refused with "database is locked" without waiting."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest

from esm.stores.sqlite.busy_retry import is_busy, pause_before, retry_while_busy


def sqlite_error(message: str, code: int | None) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "busy"),
    [
        (sqlite_error("database is locked", sqlite3.SQLITE_BUSY), True),
        (sqlite_error("database table is locked", sqlite3.SQLITE_LOCKED), True),
        (sqlite_error("database is locked", sqlite3.SQLITE_BUSY | (1 << 8)), True),  # BUSY_RECOVERY
        (sqlite_error("database is locked", None), True),
        (sqlite_error("disk I/O error", sqlite3.SQLITE_IOERR), False),
        (sqlite_error("no such table: x", sqlite3.SQLITE_ERROR), False),
        (sqlite_error("unable to open database file", None), False),
    ],
)
def test_only_lock_refusals_count_as_busy(error: sqlite3.Error, busy: bool) -> None:
    assert is_busy(error) is busy


@pytest.mark.parametrize(
    ("attempt", "draw", "pause"),
    [(1, 0.0, 0.0025), (1, 1.0, 0.005), (2, 1.0, 0.01), (5, 1.0, 0.08), (6, 1.0, 0.1), (60, 0.0, 0.05)],
)
def test_pauses_double_from_5_ms_up_to_100_ms_with_jitter(attempt: int, draw: float, pause: float) -> None:
    assert pause_before(attempt, lambda: draw) == pytest.approx(pause)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def flaky(failures: list[sqlite3.Error]) -> tuple[list[int], Callable[[], str]]:
    calls = [0]

    def step() -> str:
        calls[0] += 1
        if failures:
            raise failures.pop(0)
        return "done"

    return calls, step


def test_a_busy_step_is_run_again_until_it_succeeds() -> None:
    time = FakeTime()
    calls, step = flaky([sqlite_error("database is locked", sqlite3.SQLITE_BUSY)] * 3)

    result = retry_while_busy(step, 10.0, clock=time.clock, sleep=time.sleep, draw=lambda: 1.0)

    assert result == "done"
    assert calls[0] == 4
    assert time.pauses == pytest.approx([0.005, 0.01, 0.02])


def test_the_last_busy_error_is_raised_once_the_deadline_passes() -> None:
    time = FakeTime()
    failures = [sqlite_error(f"database is locked ({n})", sqlite3.SQLITE_BUSY) for n in range(1000)]
    _, step = flaky(failures)

    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        retry_while_busy(step, 1.0, clock=time.clock, sleep=time.sleep, draw=lambda: 1.0)

    assert time.now <= 1.0
    assert sum(time.pauses) > 0.85  # it waited nearly the whole timeout before giving up


def test_any_other_error_is_raised_at_once() -> None:
    time = FakeTime()
    calls, step = flaky([sqlite_error("disk I/O error", sqlite3.SQLITE_IOERR)])

    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        retry_while_busy(step, 10.0, clock=time.clock, sleep=time.sleep)

    assert calls[0] == 1
    assert time.pauses == []
