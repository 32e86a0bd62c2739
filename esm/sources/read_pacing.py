"""When a stream shard (Kinesis, DynamoDB Streams) is read next: pure, so it is tested by table.

AWS allows each shard 5 GetRecords a second, so reads start at least `MIN_READ_SPACING_SECONDS`
apart, whether the reader is behind or caught up. A caught-up shard's polling interval counts from
the start of one read to the start of the next, not from the end of a read: a record waits at most
one interval (plus the read itself) before a read sees it, however long the reads take. A
throttled read's backoff counts from when the refusal came back.

Idle back-off: a shard whose reads keep coming back empty is read less often. Its interval grows
with the time its reads have been empty, by a tenth of it (`QUIET_FRACTION`), from the polling
interval up to the idle interval: with the defaults (0.2 s, 1 s) it starts growing after 2 s of
empty reads and reaches 1 s after 10 s. A record that comes to such a shard waits at most a tenth
of the quiet time before it (never more than the idle interval, never less than the polling
interval); the first read that returns records, or finds the shard behind, brings the polling
interval back at once.
"""

from __future__ import annotations

# Kinesis and DynamoDB Streams: at most 5 GetRecords per second per shard.
MIN_READ_SPACING_SECONDS = 0.2
# An idle shard's interval: this fraction of the time its reads have come back empty.
QUIET_FRACTION = 0.1


def next_read_wait(
    started: float,
    returned: float,
    suggested_delay: float,
    throttled: bool,
    min_spacing: float = MIN_READ_SPACING_SECONDS,
) -> float:
    """Seconds to wait, at `returned`, before the next read of a shard whose last read started at
    `started` (both monotonic seconds) and suggested `suggested_delay` (0 while behind, the polling
    interval once caught up, the backoff when `throttled`)."""
    if throttled:
        next_start = max(returned + suggested_delay, started + min_spacing)
    else:
        next_start = started + max(suggested_delay, min_spacing)
    return max(0.0, next_start - returned)


def quiet_since(
    since: float | None, started: float, records: bool, caught_up: bool, throttled: bool
) -> float | None:
    """When the shard's current run of empty, caught-up reads began (monotonic seconds, the start
    of its first read), after a read that started at `started`; None when that read returned
    records or found the shard behind. A throttled read changes nothing."""
    if throttled:
        return since
    if records or not caught_up:
        return None
    return started if since is None else since


def idle_interval(interval: float, max_interval: float, quiet_for: float) -> float:
    """A caught-up shard's interval when its reads have come back empty for `quiet_for` seconds:
    `interval` (the polling interval), growing with the quiet time up to `max_interval`."""
    return max(interval, min(max_interval, QUIET_FRACTION * quiet_for))
