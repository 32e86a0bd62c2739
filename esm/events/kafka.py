"""Lambda's Kafka event shape (self-managed Kafka).

    {"eventSource": "SelfManagedKafka", "bootstrapServers": "h1:9092,h2:9092",
     "records": {"<topic>-<partition>": [{"topic", "partition", "offset", "timestamp",
                 "timestampType", "key", "value", "headers": [{"name": [byte ints]}]}]}}

Key and value are base64; a null key is left out (as AWS does) and a null value (a tombstone)
is JSON null. Any bytes are delivered: header values are byte lists, and a header name that is
not UTF-8 is read as Java's client reads it (U+FFFD for each malformed sequence). Each Kafka
client's reader turns a fetched record into its event entry once, on the reader's thread
(`event_record`); a batch's event is then those entries under one key. A record the client
cannot read whole gets an entry without the part it could not read, marked unreadable
(`unreadable_record`, esm.events.unreadable).
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Sequence
from typing import Any

import orjson

from esm.events.unreadable import UNREADABLE, mark_unreadable

# One record as the event carries it (the dict `event_record` makes).
EventRecord = dict[str, Any]

# kafka-python's timestamp types (ConsumerRecord.timestamp_type) and librdkafka's.
KAFKA_PYTHON_TIMESTAMP_TYPES = {0: "CREATE_TIME", 1: "LOG_APPEND_TIME"}
LIBRDKAFKA_TIMESTAMP_TYPES = {1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}
NO_TIMESTAMP_TYPE = "NO_TIMESTAMP_TYPE"

# JSON of one entry beyond its topic, key, value and headers: field names and punctuation (98
# bytes), the numbers at their longest (an int32 partition, int64 offset and timestamp: 10 + 19 +
# 20), the longest timestampType (17), a null value (4) and the comma after the entry.
_ENTRY_OVERHEAD_BYTES = 170
# topic, partition, offset, timestamp, timestampType, value, headers: an entry without a key.
_PLAIN_KEYLESS_FIELDS = 7
# A JSON string escape is at most 6 bytes (\u00XX) per character, UTF-8 at most 4.
_MAX_JSON_BYTES_PER_CHAR = 6


def event_record(
    topic: str,
    partition: int,
    offset: int,
    timestamp: int,
    timestamp_type: str,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
) -> EventRecord:
    """One fetched record as Lambda's Kafka event shows it."""
    entry: EventRecord = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "timestampType": timestamp_type,
    }
    if key is not None:
        entry["key"] = b2a_base64(key, newline=False).decode("ascii")
    entry["value"] = None if value is None else b2a_base64(value, newline=False).decode("ascii")
    entry["headers"] = [{name: list(raw or b"")} for name, raw in headers] if headers else []
    return entry


def unreadable_record(
    topic: str,
    partition: int,
    offset: int,
    timestamp: int,
    timestamp_type: str,
    key: bytes | None,
    value: bytes | None,
    reason: str,
) -> EventRecord:
    """The entry of a record whose headers the client could not read: everything else, no
    `headers`, and why (it goes to the on-failure destination, never to the function)."""
    entry = event_record(topic, partition, offset, timestamp, timestamp_type, key, value, None)
    del entry["headers"]
    return mark_unreadable(entry, reason)


def estimated_entry_size(entry: EventRecord) -> int:
    """An upper bound of the entry's bytes in the event JSON (for the 6 MB cut)."""
    value = entry["value"]
    if len(entry) == _PLAIN_KEYLESS_FIELDS and not entry.get("headers", True):
        # Most records (no key, no headers): the reader sizes each one, at full speed.
        return _ENTRY_OVERHEAD_BYTES + len(entry["topic"]) + (len(value) if value else 0)
    size = _ENTRY_OVERHEAD_BYTES + len(entry["topic"]) + len(entry.get("key") or "") + len(value or "")
    reason = entry.get(UNREADABLE)
    if reason is not None:  # a record that could not be read: no headers, and why
        size += len(UNREADABLE) + 6 + _MAX_JSON_BYTES_PER_CHAR * len(reason)
    for header in entry.get("headers", ()):
        for name, values in header.items():
            # A name is any text; each value byte becomes up to 3 digits plus a comma.
            size += _MAX_JSON_BYTES_PER_CHAR * len(name) + 8 + 4 * len(values)
    return size


class KafkaEventBuilder:
    """Builds the invocation payload for one partition's batch."""

    def __init__(self, bootstrap_servers: Sequence[str], event_source: str = "SelfManagedKafka") -> None:
        self._event_source = event_source
        self.bootstrap_servers = tuple(bootstrap_servers)
        self._bootstrap = ",".join(bootstrap_servers)

    def build(self, partition_key: str, entries: Sequence[EventRecord]) -> bytes:
        """`partition_key` is "<topic>-<partition>", the key Lambda files the records under."""
        return orjson.dumps(
            {
                "eventSource": self._event_source,
                "bootstrapServers": self._bootstrap,
                "records": {partition_key: entries},
            }
        )
