"""A Kafka topic's positions as any Kafka tooling reads them: each partition's end offset and a
consumer group's committed offsets (plain kafka-python, for `esm status` and the helpers).

End offsets come from a fetch's high-water mark, which is right on every broker; the bundled
broker's ListOffsets LATEST is not (docs/architecture.md, "The bundled broker and the emulators").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition


class KafkaOffsetsError(RuntimeError):
    """A position could not be read."""


def _bounded(timeout_s: float) -> dict[str, int]:
    """kafka-python client settings that bound its waits for the brokers by `timeout_s`: the first
    connection (its constructor waits for it) and each request."""
    timeout_ms = max(1, int(timeout_s * 1000))
    return {"bootstrap_timeout_ms": timeout_ms, "request_timeout_ms": timeout_ms}


def read_highwaters(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    *,
    timeout_s: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[int, int]:
    """The end offset (offset of the next record) of each partition, from fetch responses.

    Reads from the (possibly too low) LATEST offset so the fetch is small; the high-water mark
    in the response is right even where ListOffsets is not.
    """
    tps = [TopicPartition(topic, p) for p in partitions]
    deadline = clock() + timeout_s
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        client_id="esm-read-highwaters",
        **_bounded(timeout_s),
    )
    try:
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        while clock() < deadline:
            consumer.poll(timeout_ms=100)
            marks = {tp.partition: consumer.highwater(tp) for tp in tps}
            if all(mark is not None for mark in marks.values()):
                return {p: int(mark) for p, mark in marks.items()}
        missing = sorted(tp.partition for tp in tps if consumer.highwater(tp) is None)
        raise KafkaOffsetsError(
            f"topic {topic!r}: no high-water mark for partitions {missing} after {timeout_s}s"
        )
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str, timeout_s: float = 30.0) -> dict[int, int]:
    """The consumer group's committed offsets on `topic`, by partition (absent: none committed).
    Each wait for the brokers (connecting, the request) lasts at most `timeout_s`."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="esm-committed-offsets", **_bounded(timeout_s)
    )
    try:
        by_group = admin.list_group_offsets({group_id: None})
    finally:
        admin.close()
    offsets = by_group.get(group_id, {})
    return {
        tp.partition: int(meta.offset)
        for tp, meta in offsets.items()
        if tp.topic == topic and meta.offset >= 0  # -1: no commit for that partition
    }
