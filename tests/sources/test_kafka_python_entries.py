"""The fast decoder (esm.sources.kafka_python_entries) yields exactly the event entries that
kafka-python's own decoding, converted by `event_record`, gives: property-tested over records
built with kafka-python's DefaultRecordBatchBuilder, through the fetcher's PartitionRecords."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition
from raw_header_names import RawName

from esm.sources import kafka_python_headers
from esm.sources.kafka_python_entries import EntryPartitionRecords, _entries_of, decode_entries

TP = TopicPartition("orders", 3)
Record = tuple[bytes | None, bytes | None, list[tuple[bytes, bytes | None]], int]
RECORDS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=200)),  # key (past one varint byte too)
        st.one_of(st.none(), st.binary(max_size=200)),  # value
        st.lists(st.tuples(st.binary(max_size=70), st.one_of(st.none(), st.binary(max_size=70))), max_size=3),
        st.integers(min_value=-1, max_value=2**62),  # timestamp
    ),
    min_size=1,
    max_size=12,
)
CODECS = [
    pytest.param(0, id="none"),
    pytest.param(1, id="gzip", marks=pytest.mark.skipif(not has_gzip(), reason="no gzip")),
    pytest.param(2, id="snappy", marks=pytest.mark.skipif(not has_snappy(), reason="no python-snappy")),
    pytest.param(3, id="lz4", marks=pytest.mark.skipif(not has_lz4(), reason="no lz4")),
    pytest.param(4, id="zstd", marks=pytest.mark.skipif(not has_zstd(), reason="no zstd codec")),
]
_ATTRIBUTES_AT = DefaultRecordBatch.ATTRIBUTES_OFFSET
_CRC_AT = DefaultRecordBatch.CRC_OFFSET


def batch_of(records: list[Record], base_offset: int = 0, codec: int = 0, gaps: int = 1) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=2**22,
    )
    for i, (key, value, headers, timestamp) in enumerate(records):
        builder.append(i * gaps, timestamp, key, value, [(RawName(name), v) for name, v in headers])
    raw = bytearray(builder.build())
    struct.pack_into(">q", raw, 0, base_offset)
    return bytes(raw)


def with_attributes(raw: bytes, extra: int) -> bytes:
    """The batch with attribute bits added and its CRC made right again."""
    data = bytearray(raw)
    (attributes,) = struct.unpack_from(">h", data, _ATTRIBUTES_AT)
    struct.pack_into(">h", data, _ATTRIBUTES_AT, attributes | extra)
    struct.pack_into(">I", data, _CRC_AT, calc_crc32c(memoryview(data)[_ATTRIBUTES_AT:]))
    return bytes(data)


def kafka_pythons_entries(raw: bytes, fetch_offset: int = 0) -> list[dict[str, Any]]:
    """What the reader made before: kafka-python's ConsumerRecords through `event_record`
    (`_entries_of`, the conversion the reader used)."""
    kafka_python_headers.install()
    part = Fetcher.PartitionRecords(fetch_offset, TP, MemoryRecords(raw), check_crcs=True)
    return list(_entries_of(iter(part.take()), TP.topic, TP.partition))


def fast_entries(raw: bytes, fetch_offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    part = EntryPartitionRecords(fetch_offset, TP, MemoryRecords(raw), check_crcs=True)
    return part.take(), part.next_fetch_offset


@settings(deadline=None, max_examples=150)
@given(RECORDS)
def test_one_batch_decodes_as_kafka_python_does(records: list[Record]) -> None:
    raw = batch_of(records, base_offset=1000)
    expected = kafka_pythons_entries(raw)
    decoded = decode_entries(DefaultRecordBatch(raw), TP.topic, TP.partition)
    assert decoded == expected
    # The event's JSON byte for byte: the same keys in the same order.
    assert orjson.dumps(decoded) == orjson.dumps(expected)
    assert fast_entries(raw) == (expected, 1000 + len(records))


@pytest.mark.parametrize("codec", CODECS)
@settings(deadline=None, max_examples=40)
@given(st.lists(RECORDS, min_size=1, max_size=3), st.integers(min_value=0, max_value=40))
def test_batches_of_each_codec_from_any_fetch_offset(
    codec: int, batches: list[list[Record]], fetch_offset: int
) -> None:
    raw, base = b"", 0
    for records in batches:
        raw += batch_of(records, base_offset=base, codec=codec, gaps=2)  # compacted: offsets apart
        base += 2 * len(records)
    fetched, next_offset = fast_entries(raw, fetch_offset)
    assert fetched == kafka_pythons_entries(raw, fetch_offset)
    assert [e["offset"] for e in fetched] == sorted(e["offset"] for e in fetched)
    # v2 keeps the batch's last offset: the next fetch starts past the last batch.
    assert next_offset == base - 1


@settings(deadline=None, max_examples=60)
@given(
    st.lists(RECORDS, min_size=1, max_size=4),
    st.integers(min_value=0, max_value=30),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=6),
)
def test_takes_of_any_size_read_on_where_the_last_one_stopped(
    batches: list[list[Record]], fetch_offset: int, sizes: list[int]
) -> None:
    """A poll takes at most max_records: batches are sliced across takes, and the fetcher's
    position (`next_fetch_offset`) is the offset after the last record taken each time."""
    raw, base = b"", 0
    for records in batches:
        raw += batch_of(records, base_offset=base, codec=1, gaps=2)
        base += 2 * len(records)
    expected = kafka_pythons_entries(raw, fetch_offset)
    part = EntryPartitionRecords(fetch_offset, TP, MemoryRecords(raw), check_crcs=True)
    taken: list[dict[str, Any]] = []
    for i in range(len(expected) + 1):
        chunk = part.take(sizes[i % len(sizes)])
        assert len(chunk) <= sizes[i % len(sizes)]
        taken += chunk
        if chunk:
            assert part.next_fetch_offset == chunk[-1]["offset"] + 1
        if not part:
            break
    assert taken == expected
    assert not part.take(5) and not part  # drained
    assert part.next_fetch_offset == base - 1


def test_log_append_time_is_the_batchs_max_timestamp() -> None:
    raw = with_attributes(batch_of([(b"k", b"v", [], 5), (None, None, [], 9)]), 0x08)
    entries, _ = fast_entries(raw)
    assert entries == kafka_pythons_entries(raw)
    assert {(e["timestamp"], e["timestampType"]) for e in entries} == {(9, "LOG_APPEND_TIME")}


def test_control_batches_are_skipped() -> None:
    control = with_attributes(batch_of([(b"\x00\x00\x00\x00", b"\x00" * 6, [], 1)], base_offset=2), 0x30)
    raw = batch_of([(b"a", b"1", [], 1), (b"b", b"2", [], 1)]) + control + batch_of([(b"c", b"3", [], 1)], 3)
    entries, next_offset = fast_entries(raw)
    assert [e["offset"] for e in entries] == [0, 1, 3]
    assert entries == kafka_pythons_entries(raw)
    assert next_offset == 4


def test_non_utf8_header_names_read_as_java_reads_them() -> None:
    raw = batch_of([(b"k", b"v", [(b"ok\xff\xfename", b"\x01\x02"), (b"n", None)], 7)])
    (entry,), _ = fast_entries(raw)
    assert entry["headers"] == [{"ok\ufffd\ufffdname": [1, 2]}, {"n": []}]
    assert [entry] == kafka_pythons_entries(raw)


def test_a_bad_crc_fails_as_kafka_python_fails() -> None:
    raw = bytearray(batch_of([(b"k", b"v", [], 7)]))
    raw[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="crc"):
        fast_entries(bytes(raw))


def test_a_malformed_batch_is_left_to_kafka_pythons_reader() -> None:
    """A record length that disagrees with its bytes: the CRC is right (the producer wrote it so);
    kafka-python's iterator reads the batch and raises its own error, after the good records."""
    good = batch_of([(b"a", b"1", [], 1), (b"b", b"22", [], 1)])
    data = bytearray(good)
    header = DefaultRecordBatch.HEADER_STRUCT.size
    second = header + 1 + data[header] // 2  # past the first record (length varint + length)
    data[second] += 2  # the second record claims one byte more than it has
    data = bytearray(with_attributes(bytes(data), 0))
    part = EntryPartitionRecords(0, TP, MemoryRecords(bytes(data)), check_crcs=True)
    first = part.take()
    assert [e["offset"] for e in first] == [0]
    with pytest.raises(CorruptRecordError):
        part.take()
