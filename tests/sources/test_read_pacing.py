"""next_read_wait: when a stream shard is read again, by table."""

from __future__ import annotations

import itertools

import pytest

from esm.sources.read_pacing import MIN_READ_SPACING_SECONDS, idle_interval, next_read_wait, quiet_since


@pytest.mark.parametrize(
    ("started", "returned", "suggested", "throttled", "expected"),
    [
        # Caught up: the interval runs from the read's start, so a slow read waits less after it.
        (10.0, 10.01, 0.25, False, 0.24),
        (10.0, 10.2, 0.25, False, 0.05),
        # A read that took longer than the interval is followed at once.
        (10.0, 10.4, 0.25, False, 0.0),
        # Behind (no delay suggested): still at most 5 reads a second.
        (10.0, 10.01, 0.0, False, 0.19),
        (10.0, 10.3, 0.0, False, 0.0),
        # An interval below the spacing (PollingIntervalInSeconds 0.05) is raised to it.
        (10.0, 10.0, 0.05, False, MIN_READ_SPACING_SECONDS),
        # Throttled: the backoff counts from the refusal...
        (10.0, 10.1, 0.5, True, 0.5),
        # ...and never brings the next read within the spacing of this one.
        (10.0, 10.01, 0.0, True, 0.19),
    ],
)
def test_next_read_wait(
    started: float, returned: float, suggested: float, throttled: bool, expected: float
) -> None:
    assert next_read_wait(started, returned, suggested, throttled) == pytest.approx(expected)


def test_reads_never_start_closer_than_the_spacing() -> None:
    """Whatever the reads return and however long they take, 5 reads a second at most."""
    now = 0.0
    starts: list[float] = []
    durations = [0.0, 0.003, 0.05, 0.19, 0.21, 0.0]
    for index in range(60):
        starts.append(now)
        returned = now + durations[index % len(durations)]
        suggested = (0.0, 0.2, 0.25, 0.01)[index % 4]
        now = returned + next_read_wait(starts[-1], returned, suggested, throttled=index % 7 == 0)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= MIN_READ_SPACING_SECONDS - 1e-9


@pytest.mark.parametrize(
    ("since", "started", "records", "caught_up", "throttled", "expected"),
    [
        # The first empty, caught-up read starts the quiet run; later ones keep its start.
        (None, 5.0, False, True, False, 5.0),
        (5.0, 9.0, False, True, False, 5.0),
        # Records, or a shard found behind (MillisBehindLatest > 0, a full page), end it.
        (5.0, 9.0, True, True, False, None),
        (5.0, 9.0, True, False, False, None),
        (5.0, 9.0, False, False, False, None),
        # A throttled read says nothing about the shard's records.
        (5.0, 9.0, False, False, True, 5.0),
        (None, 9.0, False, False, True, None),
    ],
)
def test_quiet_since(
    since: float | None,
    started: float,
    records: bool,
    caught_up: bool,
    throttled: bool,
    expected: float | None,
) -> None:
    assert quiet_since(since, started, records, caught_up, throttled) == expected


@pytest.mark.parametrize(
    ("interval", "max_interval", "quiet_for", "expected"),
    [
        # Reads that just came back empty: the polling interval.
        (0.2, 1.0, 0.0, 0.2),
        (0.2, 1.0, 2.0, 0.2),
        # Then a tenth of the quiet time...
        (0.2, 1.0, 3.0, 0.3),
        (0.2, 1.0, 5.0, 0.5),
        # ...up to the idle interval.
        (0.2, 1.0, 10.0, 1.0),
        (0.2, 1.0, 3600.0, 1.0),
        (0.2, 0.5, 60.0, 0.5),
        # An idle interval equal to the polling interval: no back-off.
        (0.2, 0.2, 60.0, 0.2),
        # A polling interval above a tenth of the quiet time stays.
        (2.0, 5.0, 10.0, 2.0),
        (2.0, 5.0, 30.0, 3.0),
    ],
)
def test_idle_interval(interval: float, max_interval: float, quiet_for: float, expected: float) -> None:
    assert idle_interval(interval, max_interval, quiet_for) == pytest.approx(expected)


def test_an_idle_shard_backs_off_and_the_first_records_bring_the_interval_back() -> None:
    """A shard read the way StreamShard reads it: empty reads for 30 s, then a read with records."""
    polling, max_interval = 0.2, 1.0
    now, since = 0.0, None
    starts: list[float] = []

    def read(records: bool) -> None:
        nonlocal now, since
        starts.append(now)
        started, returned = now, now + 0.005
        since = quiet_since(since, started, records, caught_up=True, throttled=False)
        delay = polling if since is None else idle_interval(polling, max_interval, started - since)
        now = returned + next_read_wait(started, returned, delay, throttled=False)

    while now < 30.0:
        read(records=False)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] == pytest.approx(polling)
    assert max(gaps) == pytest.approx(max_interval)
    # It only ever grows while the reads are empty.
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(gaps))
    # At the cap the shard is read once a second, as Lambda reads every shard.
    assert sum(1 for start in starts if start >= 20.0) == pytest.approx(10, abs=1)
    read(records=True)
    read(records=False)
    assert starts[-1] - starts[-2] == pytest.approx(polling)
