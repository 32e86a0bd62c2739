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

import sys
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
    # Record => Length Attributes(int8) TimestampDelta OffsetDelta Key Value Headers; every
    # number a zigzag varint (kafka-python reads the attributes as one too). The loop reads one-
    # and two-byte varints in line (a call per field was most of its time) and leaves longer
    # ones to `_varint`; zigzag: n -> (n >> 1) ^ -(n & 1).
    for _ in range(batch.records_count):
        b = data[pos]
        if b < 0x80:
            length = (b >> 1) ^ -(b & 1)
            pos += 1
        elif data[pos + 1] < 0x80:
            b = (b & 0x7F) | (data[pos + 1] << 7)
            length = (b >> 1) ^ -(b & 1)
            pos += 2
        else:
            length, pos = varint(data, pos)
        start = pos
        if data[pos] < 0x80:  # the attributes: unused, 0 as every client writes them
            pos += 1
        else:
            _, pos = varint(data, pos)
        b = data[pos]
        if b < 0x80:
            ts_delta = (b >> 1) ^ -(b & 1)
            pos += 1
        elif data[pos + 1] < 0x80:
            b = (b & 0x7F) | (data[pos + 1] << 7)
            ts_delta = (b >> 1) ^ -(b & 1)
            pos += 2
        else:
            ts_delta, pos = varint(data, pos)
        b = data[pos]
        if b < 0x80:
            offset_delta = (b >> 1) ^ -(b & 1)
            pos += 1
        elif data[pos + 1] < 0x80:
            b = (b & 0x7F) | (data[pos + 1] << 7)
            offset_delta = (b >> 1) ^ -(b & 1)
            pos += 2
        else:
            offset_delta, pos = varint(data, pos)
        if data[pos] == 1:  # a null key: length -1
            key = None
            pos += 1
        else:
            key, pos = base64_field(data, pos, end)
        b = data[pos]
        if b < 0x80:
            size = (b >> 1) ^ -(b & 1)
            pos += 1
        elif data[pos + 1] < 0x80:
            b = (b & 0x7F) | (data[pos + 1] << 7)
            size = (b >> 1) ^ -(b & 1)
            pos += 2
        else:
            size, pos = varint(data, pos)
        if size < 0:
            value = None
        else:
            b = pos + size
            if b > end:
                raise _Odd("field past the batch")
            value = b2a_base64(data[pos:b], newline=False).decode("ascii")
            pos = b
        if data[pos] == 0:  # no headers
            headers: list[dict[str, list[int]]] = []
            pos += 1
        else:
            headers, pos = _headers(data, pos, end)
        if pos - start != length:
            raise _Odd("record size differs from its length")
        # The entry's keys in event_record's order (the event's JSON is byte for byte the same);
        # a null key is left out.
        if key is None:
            append(
                {
                    "topic": topic,
                    "partition": partition,
                    "offset": base_offset + offset_delta,
                    "timestamp": first_timestamp if log_append else first_timestamp + ts_delta,
                    "timestampType": timestamp_type,
                    "value": value,
                    "headers": headers,
                }
            )
        else:
            append(
                {
                    "topic": topic,
                    "partition": partition,
                    "offset": base_offset + offset_delta,
                    "timestamp": first_timestamp if log_append else first_timestamp + ts_delta,
                    "timestampType": timestamp_type,
                    "key": key,
                    "value": value,
                    "headers": headers,
                }
            )
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
    """kafka-python 3.0.12's `Fetcher.PartitionRecords`, yielding event entries a batch at a time.

    `_unpack_records` is kafka-python's, but for the loop over one batch's records: it yields
    each batch's entries as one list, and `take` slices them (kafka-python's `take` pulls records
    one by one through two iterators, which cost as much as a fifth of decoding them). What
    kafka-python's consumer reads of it is kept: `next_fetch_offset` is the offset after the last
    record taken (or what `_unpack_records` set past skipped batches), the records before
    `fetch_offset` are skipped, and an error raised after some records is raised by the next
    `take`, those records first."""

    def __init__(
        self,
        fetch_offset: int,
        tp: Any,
        records: Any,
        key_deserializer: Any = None,
        value_deserializer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fetch_offset, tp, records, key_deserializer, value_deserializer, **kwargs)
        # Entry lists, one per batch (`_unpack_records` without kafka-python's `dropwhile`).
        self.record_iterator = self._unpack_records(tp, records, key_deserializer, value_deserializer)
        self._pending: list[EventRecord] = []  # the current batch's entries not taken yet
        self._taken = 0

    def take(self, n: int | None = None) -> list[EventRecord]:
        self._maybe_raise_next_inline_exception()
        records: list[EventRecord] = []
        wanted = sys.maxsize if n is None else n
        try:
            while len(records) < wanted:
                if self._taken >= len(self._pending):
                    if self.record_iterator is None:
                        break
                    following = next(self.record_iterator, None)  # its end drains: None
                    if following is None:
                        break
                    self._pending, self._taken = following, 0
                    continue
                chunk = self._pending[self._taken : self._taken + wanted - len(records)]
                self._taken += len(chunk)
                records.extend(chunk)
                self.next_fetch_offset = chunk[-1]["offset"] + 1
        except Exception as e:
            if not records:
                raise
            self._next_inline_exception = e  # raised by the next take, as kafka-python does
        return records

    def drain(self) -> None:
        self._pending, self._taken = [], 0
        super().drain()

    def _unpack_records(
        self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[list[EventRecord]]:
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

    def _batch_entries(
        self, batch: Any, topic: str, partition: int, plain: bool
    ) -> Iterator[list[EventRecord]]:
        entries: list[EventRecord] | None = None
        if plain and isinstance(batch, DefaultRecordBatch):
            try:
                entries = decode_entries(batch, topic, partition)
            except (_Odd, IndexError, ValueError):
                entries = None  # kafka-python's iterator reads it, and raises what it raises
        if entries is None:
            # One record at a time: an error comes after exactly the records read before it.
            for entry in _entries_of(self._checked(batch), topic, partition):
                self.records_read += 1
                if entry["offset"] >= self.fetch_offset:
                    yield [entry]
            return
        self.records_read += len(entries)
        self.bytes_read += batch.size_in_bytes
        if entries and entries[0]["offset"] < self.fetch_offset:
            # A compressed batch is fetched whole: its records before the fetch offset are skipped.
            entries = [entry for entry in entries if entry["offset"] >= self.fetch_offset]
        if entries:
            yield entries

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
