"""Lambda's Kafka event shape (self-managed Kafka), built from kafka-python records.

    {"eventSource": "SelfManagedKafka", "bootstrapServers": "h1:9092,h2:9092",
     "records": {"<topic>-<partition>": [{"topic", "partition", "offset", "timestamp",
                 "timestampType", "key", "value", "headers": [{"name": [byte ints]}]}]}}

Key and value are base64; a null key is left out (as AWS does) and a null value (a tombstone)
is JSON null.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

_TIMESTAMP_TYPES = {0: "CREATE_TIME", 1: "LOG_APPEND_TIME"}

# JSON of one record without key, value and headers: field names, punctuation, numbers.
_RECORD_OVERHEAD_BYTES = 160


class KafkaRecordLike(Protocol):
    """The fields of kafka-python's ConsumerRecord that the event uses."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def timestamp_type(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def estimated_record_size(record: KafkaRecordLike) -> int:
    """An upper-bound estimate of the record's bytes in the event JSON (used for the 6 MB cut)."""
    size = _RECORD_OVERHEAD_BYTES + len(record.topic)
    if record.key is not None:
        size += _b64_len(len(record.key))
    if record.value is not None:
        size += _b64_len(len(record.value))
    for name, value in record.headers:
        # Each byte becomes up to 3 digits plus a comma.
        size += len(name) + 8 + 4 * (len(value) if value else 0)
    return size


class KafkaEventBuilder:
    """Builds the invocation payload for a batch (esm's batches hold one partition's records, but
    records of several partitions are grouped correctly too)."""

    def __init__(self, bootstrap_servers: Sequence[str], event_source: str = "SelfManagedKafka") -> None:
        self._event_source = event_source
        self._bootstrap = ",".join(bootstrap_servers)

    def build(self, records: Sequence[KafkaRecordLike]) -> bytes:
        # The hot path of the engine: one dict per record, C-level base64, no calls per record.
        by_partition: dict[str, list[dict[str, Any]]] = {}
        topic, partition = "", -1
        entries: list[dict[str, Any]] = []
        types = _TIMESTAMP_TYPES
        for record in records:
            if record.partition != partition or record.topic != topic:
                topic, partition = record.topic, record.partition
                entries = by_partition.setdefault(f"{topic}-{partition}", [])
            entry: dict[str, Any] = {
                "topic": topic,
                "partition": partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "timestampType": types.get(record.timestamp_type, "NO_TIMESTAMP_TYPE"),
            }
            key = record.key
            if key is not None:
                entry["key"] = b2a_base64(key, newline=False).decode("ascii")
            value = record.value
            entry["value"] = None if value is None else b2a_base64(value, newline=False).decode("ascii")
            headers = record.headers
            entry["headers"] = [{name: list(raw or b"")} for name, raw in headers] if headers else []
            entries.append(entry)
        return orjson.dumps(
            {"eventSource": self._event_source, "bootstrapServers": self._bootstrap, "records": by_partition}
        )
