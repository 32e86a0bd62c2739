"""kafka-python reads any header name as Java's client does (esm.sources.kafka_python_headers),
property-tested over record bytes through kafka-python's own record format code: records are
built with its DefaultRecordBatchBuilder and read back with its DefaultRecordBatch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from raw_header_names import RawName

from esm.sources import kafka_python_headers

Header = tuple[bytes, bytes]
RECORDS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=64)),  # key
        st.one_of(st.none(), st.binary(max_size=64)),  # value
        st.lists(st.tuples(st.binary(max_size=16), st.binary(max_size=16)), max_size=4),  # headers
        st.integers(min_value=0, max_value=2**62),  # timestamp
    ),
    min_size=1,
    max_size=8,
)


def batch_of(records: list[tuple[bytes | None, bytes | None, list[Header], int]]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=2**20,
    )
    for offset, (key, value, headers, timestamp) in enumerate(records):
        builder.append(offset, timestamp, key, value, [(RawName(name), v) for name, v in headers])
    return bytes(builder.build())


@settings(deadline=None)
@given(RECORDS)
def test_every_record_reads_back_whole_with_names_as_java_decodes_them(
    records: list[tuple[bytes | None, bytes | None, list[Header], int]],
) -> None:
    kafka_python_headers.install()
    read = list(DefaultRecordBatch(batch_of(records)))
    assert len(read) == len(records)
    for got, (key, value, headers, timestamp) in zip(read, records, strict=True):
        assert (got.key, got.value, got.timestamp) == (key, value, timestamp)
        # Java's `new String(bytes, UTF_8)`: U+FFFD for each malformed sequence.
        assert got.headers == [(name.decode("utf-8", "replace"), v) for name, v in headers]


def test_installing_twice_wraps_once() -> None:
    kafka_python_headers.install()
    wrapped = DefaultRecordBatch._read_msg
    kafka_python_headers.install()
    assert DefaultRecordBatch._read_msg is wrapped
