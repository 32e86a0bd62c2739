"""next_read_wait: when a stream shard is read again, by table."""

from __future__ import annotations

import itertools

import pytest

from esm.sources.read_pacing import MIN_READ_SPACING_SECONDS, next_read_wait


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
