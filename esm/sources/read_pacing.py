"""When a stream shard (Kinesis, DynamoDB Streams) is read next: pure, so it is tested by table.

AWS allows each shard 5 GetRecords a second, so reads start at least `MIN_READ_SPACING_SECONDS`
apart, whether the reader is behind or caught up. A caught-up shard's polling interval counts from
the start of one read to the start of the next, not from the end of a read: a record waits at most
one interval (plus the read itself) before a read sees it, however long the reads take. A
throttled read's backoff counts from when the refusal came back.
"""

from __future__ import annotations

# Kinesis and DynamoDB Streams: at most 5 GetRecords per second per shard.
MIN_READ_SPACING_SECONDS = 0.2


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
