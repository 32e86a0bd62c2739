"""kafka-python's fetched records decoded straight into event entries (the reader's hot path).

kafka-python decodes each record of a v2 batch into a `DefaultRecord`, wraps it in a
`ConsumerRecord`, and esm then makes the event entry of it (`esm.events.kafka.event_record`):
three objects and most of the reader's CPU per record. `use_entries(consumer)` makes one
consumer's fetcher yield the event entries themselves: a v2 batch is decoded by
`decode_entries`, which reads the record layout directly into the entry dict.

What stays kafka-python's own (kafka-python 3.0.12: this module reads its internals, the
fetcher's `PartitionRecords` and `DefaultRecordBatch`'s buffer; tests/sources/
test_kafka_python_entries.py compares both decodings and fails should an upgrade change them):
- the batch CRC check (`check_crcs`), decompression (every codec kafka-python supports),
  transactions (aborted batches under read_committed) and control batches, skipped as before;
- a batch the fast decoder finds anything odd in (a bad length, varint or header count) is read
  again by kafka-python's own iterator, so the error it raises, and the records it yields before
  the error, are exactly what they were;
- message format v0/v1 batches, and consumers with deserializers, go through kafka-python's
  records, converted with `event_record`.
A header name that is not UTF-8 is read as Java's client reads it (U+FFFD for each malformed
sequence), as `esm.sources.kafka_python_headers` makes kafka-python read it.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Iterator
from typing import Any

from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch

from esm.events.kafka import KAFKA_PYTHON_TIMESTAMP_TYPES, NO_TIMESTAMP_TYPE, EventRecord, event_record
from esm.sources import kafka_python_headers

_LOG_APPEND_TIME = 1


class _Odd(Exception):
    """The batch is not what the fast decoder reads: kafka-python's own iterator reads it."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (as kafka.record.util.decode_varint) and the position after it."""
    b = data[pos]
    if b < 0x80:  # one byte: -64..63, almost every field of a small record
        return (b >> 1) ^ -(b & 1), pos + 1
    result = 0
    shift = 0
    while True:
        b = data[pos]
        result |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift >= 64:
            raise _Odd("varint out of int64 range")


def _base64_field(data: bytes, pos: int, end: int) -> tuple[str | None, int]:
    """A Kafka `Bytes` field (varint length, -1 for null) as the event's base64 text."""
    size, pos = _varint(data, pos)
    if size < 0:
        return None, pos
    if pos + size > end:
        raise _Odd("field past the batch")
    return b2a_base64(data[pos : pos + size], newline=False).decode("ascii"), pos + size


def _headers(data: bytes, pos: int, end: int) -> tuple[list[dict[str, list[int]]], int]:
    count, pos = _varint(data, pos)
    if count < 0:
        raise _Odd("negative header count")
    headers = []
    for _ in range(count):
        size, pos = _varint(data, pos)
        if size < 0 or pos + size > end:
            raise _Odd("bad header name size")
        # Java's `new String(bytes, UTF_8)`, as esm.sources.kafka_python_headers reads it.
        name = data[pos : pos + size].decode("utf-8", "replace")
        pos += size
        size, pos = _varint(data, pos)
        if size > 0 and pos + size > end:
            raise _Odd("header value past the batch")
        headers.append({name: list(data[pos : pos + size]) if size > 0 else []})
        pos += max(size, 0)
    return headers, pos


def decode_entries(batch: DefaultRecordBatch, topic: str, partition: int) -> list[EventRecord]:
    """Every record of a v2 batch (CRC checked, not a control batch) as its event entry.
    Raises `_Odd` (or IndexError/ValueError) when the batch is not well formed; the batch itself
    is left as it was (its read position untouched)."""
    batch._maybe_uncompress()
    data = bytes(batch._buffer)
    pos: int = batch._pos
    end = len(data)
    base_offset = batch.base_offset
    log_append = batch.timestamp_type == _LOG_APPEND_TIME
    first_timestamp = batch.max_timestamp if log_append else batch.first_timestamp
    timestamp_type = KAFKA_PYTHON_TIMESTAMP_TYPES[batch.timestamp_type]
    entries: list[EventRecord] = []
    append = entries.append
    varint = _varint
    base64_field = _base64_field
    for _ in range(batch.records_count):
        # Record => Length Attributes(int8) TimestampDelta OffsetDelta Key Value Headers; every
        # number a zigzag varint (kafka-python reads the attributes as one too).
        length, pos = varint(data, pos)
        start = pos
        _, pos = varint(data, pos)
        ts_delta, pos = varint(data, pos)
        offset_delta, pos = varint(data, pos)
        key, pos = base64_field(data, pos, end)
        value, pos = base64_field(data, pos, end)
        if data[pos] == 0:  # no headers
            headers: list[dict[str, list[int]]] = []
            pos += 1
        else:
            headers, pos = _headers(data, pos, end)
        if pos - start != length:
            raise _Odd("record size differs from its length")
        timestamp = first_timestamp if log_append else first_timestamp + ts_delta
        # The entry's keys in event_record's order (the event's JSON is byte for byte the same);
        # a null key is left out.
        entry: EventRecord = {
            "topic": topic,
            "partition": partition,
            "offset": base_offset + offset_delta,
            "timestamp": timestamp,
            "timestampType": timestamp_type,
        }
        if key is not None:
            entry["key"] = key
        entry["value"] = value
        entry["headers"] = headers
        append(entry)
    if pos != end:
        raise _Odd("bytes after the last record")
    return entries


def _entries_of(records: Iterator[Any], topic: str, partition: int) -> Iterator[EventRecord]:
    """kafka-python's own records (any format) as event entries, one at a time."""
    types = KAFKA_PYTHON_TIMESTAMP_TYPES
    for r in records:
        yield event_record(
            topic,
            partition,
            r.offset,
            r.timestamp,
            types.get(r.timestamp_type, NO_TIMESTAMP_TYPE),
            r.key,
            r.value,
            r.headers,
        )


class EntryPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python 3.0.12's `Fetcher.PartitionRecords`, yielding event entries. `_unpack_records`
    is kafka-python's, but for the loop over one batch's records."""

    def _maybe_skip_record(self, record: EventRecord) -> bool:
        # A compressed batch is fetched whole: its records before the fetch offset are skipped.
        offset: int = record["offset"]
        return bool(offset < self.fetch_offset)

    def _unpack_records(
        self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[EventRecord]:
        from kafka.consumer.fetcher import IsolationLevel

        topic, partition = tp.topic, tp.partition
        plain = key_deserializer is None and value_deserializer is None
        batch = records.next_batch()
        last_batch = None
        while batch is not None:
            last_batch = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {self.topic_partition} at offset {batch.base_offset} "
                    "failed crc check"
                )
            if batch.magic == 2:
                self.leader_epoch = batch.leader_epoch
                if self.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
                    self._consume_aborted_transactions_up_to(batch.last_offset)
                    producer_id = batch.producer_id
                    if self._contains_abort_marker(batch):
                        self.aborted_producer_ids.discard(producer_id)
                    elif self._is_batch_aborted(batch):
                        self.next_fetch_offset = batch.next_offset
                        batch = records.next_batch()
                        continue
                if batch.is_control_batch:
                    self.next_fetch_offset = batch.next_offset
                    batch = records.next_batch()
                    continue
            yield from self._batch_entries(batch, topic, partition, plain)
            batch = records.next_batch()
        # As kafka-python: v2 keeps the batch's last offset even when compaction removed its
        # last record, so the next fetch starts past the batch.
        if last_batch is not None and last_batch.magic == 2:
            self.next_fetch_offset = last_batch.next_offset
        self.drain()

    def _batch_entries(self, batch: Any, topic: str, partition: int, plain: bool) -> Iterator[EventRecord]:
        entries: list[EventRecord] | None = None
        if plain and isinstance(batch, DefaultRecordBatch):
            try:
                entries = decode_entries(batch, topic, partition)
            except (_Odd, IndexError, ValueError):
                entries = None  # kafka-python's iterator reads it, and raises what it raises
        if entries is None:
            for entry in _entries_of(self._checked(batch), topic, partition):
                self.records_read += 1
                self.next_fetch_offset = entry["offset"] + 1
                yield entry
            return
        self.records_read += len(entries)
        self.bytes_read += batch.size_in_bytes
        for entry in entries:
            # Per record, as kafka-python: a poll may take part of a batch.
            self.next_fetch_offset = entry["offset"] + 1
            yield entry

    def _checked(self, batch: Any) -> Iterator[Any]:
        for record in batch:
            if self.check_crcs and not record.validate_crc():  # v0/v1 records carry their own
                raise CorruptRecordError(
                    f"Record for partition {self.topic_partition} at offset {record.offset} failed crc check"
                )
            self.bytes_read += record.size_in_bytes
            yield record


def use_entries(consumer: Any) -> None:
    """Makes `consumer.poll()` return event entries (dicts) instead of ConsumerRecords."""
    kafka_python_headers.install()  # for the batches kafka-python's iterator reads
    consumer._fetcher.PartitionRecords = EntryPartitionRecords
