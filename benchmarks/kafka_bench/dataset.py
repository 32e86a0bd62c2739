"""The benchmark's data: a fresh topic filled with fixed-size records spread evenly over partitions."""

from __future__ import annotations

import os
from collections.abc import Iterator

from esm.embedded import OutgoingRecord, create_topic, produce, read_highwaters


def fill_topic(
    bootstrap: str, topic: str, partitions: int, records: int, record_bytes: int
) -> dict[int, int]:
    """Create `topic`, produce `records` values of `record_bytes`; returns each partition's end offset."""
    create_topic(bootstrap, topic, partitions)
    produce(bootstrap, topic, _records(partitions, records, record_bytes), linger_ms=20)
    ends = read_highwaters(bootstrap, topic, range(partitions))
    if sum(ends.values()) != records:
        raise RuntimeError(
            f"topic {topic!r} holds {sum(ends.values())} records after producing {records}: {ends}"
        )
    return ends


def _records(partitions: int, count: int, record_bytes: int) -> Iterator[OutgoingRecord]:
    value = os.urandom(record_bytes)  # one random value: content does not matter, size does
    for i in range(count):
        yield OutgoingRecord(value=value, partition=i % partitions)
