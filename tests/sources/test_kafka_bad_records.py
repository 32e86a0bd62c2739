"""Records with any bytes a producer can write (issue 10, item 2), read by both Kafka clients from
a real broker (Tansu): each affects only itself, and every other record of every partition is
delivered, in order, without the reader failing or reconnecting.

Neither Python client writes a header name that is not UTF-8 (both encode a `str`), but the
protocol carries bytes and other clients write any: the bad name here goes through kafka-python's
record builder as raw bytes (`RawName`). The other odd records (a null header value among them,
which kafka-python refuses to send) are produced with confluent-kafka."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer
from raw_header_names import RawName

from esm.embedded.topics import OutgoingRecord, produce
from esm.events.kafka import estimated_entry_size
from esm.events.unreadable import unreadable_reason
from esm.sources.kafka import KafkaGroupReader

from .kafka_events import Collector
from .test_kafka import ReaderClass, reader_class, settings, until

__all__ = ["reader_class"]  # the fixture, parametrised over both clients


BAD_NAME = b"\xff\xfeHDR"
# (key, value, headers, timestamp ms) of the odd records after the bad name, all on partition 0.
ODD_RECORDS: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int | None]] = [
    (bytes(range(256)), bytes(range(255, -1, -1)), [("", b""), ("null-value", None)], None),
    (None, None, [], None),  # a tombstone without a key
    (b"", b"", [("dup", b"1"), ("dup", b"2")], 1),  # 1970 (librdkafka takes 0 for "now")
    (b"future", b"x", [], 2**62),  # a timestamp no datetime can hold
]
ODD = 1 + len(ODD_RECORDS)


def produce_odd_records(bootstrap: str, topic: str, healthy_per_partition: int) -> None:
    """Healthy records on partitions 0-3, with the odd ones in the middle of partition 0."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    half = healthy_per_partition // 2
    for n in range(healthy_per_partition):
        if n == half:
            assert producer.flush(30) == 0
            produce(bootstrap, topic, [OutgoingRecord(b"bad-name", b"k", BAD_HEADERS, partition=0)])
            for key, value, headers, timestamp in ODD_RECORDS:
                extra: dict[str, Any] = {} if timestamp is None else {"timestamp": timestamp}
                producer.produce(topic, value=value, key=key, headers=headers, partition=0, **extra)
        for partition in range(4):
            producer.produce(topic, value=f"p{partition}-{n}".encode(), partition=partition)
    assert producer.flush(30) == 0


BAD_HEADERS = [(RawName(BAD_NAME), b"\x00\xff"), ("good", b"v")]


def decoded(record: dict[str, Any], field: str) -> bytes | None:
    value = record.get(field)
    return None if value is None else base64.b64decode(value)


async def test_every_record_is_delivered_and_a_bad_header_name_affects_only_its_record(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    topic = new_topic(partitions=4)
    healthy = 40
    produce_odd_records(kafka_broker, topic, healthy)
    events = Collector()
    reader = reader_class(
        settings(kafka_broker, topic, f"g-{topic}"), events, asyncio.get_running_loop(), estimated_entry_size
    )
    reader.start()
    total = 4 * healthy + ODD
    try:
        await until(lambda: events.total() == total)
    finally:
        reader.stop_fetching()
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)
    assert len(events.assigned) == 4 and events.revoked == events.assigned  # no reconnect between
    for partition, delivered in events.records.items():
        expected = healthy + (ODD if partition == 0 else 0)
        assert [r["offset"] for r in delivered] == list(range(expected))  # each once, in order
    bad_name, *odd = events.records[0][healthy // 2 : healthy // 2 + ODD]
    assert (decoded(bad_name, "key"), decoded(bad_name, "value")) == (b"k", b"bad-name")
    for record, (key, value, _, timestamp) in zip(odd, ODD_RECORDS, strict=True):
        assert (decoded(record, "key"), decoded(record, "value")) == (key, value)
        if timestamp is not None:
            assert record["timestamp"] == timestamp
    binary, tombstone, duplicates, _ = odd
    assert binary["headers"] == [{"": []}, {"null-value": []}]
    assert "key" not in tombstone and tombstone["value"] is None
    assert duplicates["headers"] == [{"dup": [49]}, {"dup": [50]}]
    if reader_class is KafkaGroupReader:
        # Read as Java's client (and so Lambda) reads it: U+FFFD for each malformed byte.
        assert unreadable_reason(bad_name) is None
        assert bad_name["headers"] == [{"\ufffd\ufffdHDR": [0, 255]}, {"good": [118]}]
    else:
        reason = unreadable_reason(bad_name)
        assert reason is not None and "header names are not UTF-8" in reason
        assert "headers" not in bad_name  # given up to the on-failure destination, uninvoked
