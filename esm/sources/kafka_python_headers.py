"""Header names that are not UTF-8, read the way Java's Kafka client (and so Lambda) reads them.

A header name is a Kafka `String` and producers are meant to write UTF-8, but the broker keeps
any bytes. Java's client decodes them with `new String(bytes, UTF_8)`, which puts U+FFFD in
place of each malformed sequence, so Lambda delivers such a record with that name. kafka-python
3.0.12 decodes them strictly instead: the `UnicodeDecodeError` becomes a CorruptRecordError that
every later fetch of the partition raises again, and each poll that reaches it fails, stalling
every partition of the consumer.

`install()` makes kafka-python read such a record as Java does. Records whose names are UTF-8
(all but the odd bad one) are read by kafka-python's own code, unchanged and at its speed; only
a record whose read fails on a header name is read again over a view of its bytes whose slices
decode with replacement. tests/sources/test_kafka_bad_records.py proves it against a broker,
and fails should a kafka-python upgrade read records differently.
"""

from __future__ import annotations

import threading
from typing import Any

from kafka.record.default_records import DefaultRecordBatch

_installed = threading.Lock()
_MARK = "_esm_lenient_header_names"


def install() -> None:
    """Idempotent; affects every kafka-python consumer in the process (esm owns them all)."""
    with _installed:
        strict_read = DefaultRecordBatch._read_msg
        if getattr(strict_read, _MARK, False):
            return

        def read_msg(batch: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return strict_read(batch, *args, **kwargs)
            except UnicodeDecodeError:
                # Nothing was consumed: the record is read again from the same position.
                raw = batch._buffer
                batch._buffer = _LenientSlices(raw)
                try:
                    return strict_read(batch, *args, **kwargs)
                finally:
                    batch._buffer = raw

        setattr(read_msg, _MARK, True)
        DefaultRecordBatch._read_msg = read_msg


class _LenientText(bytes):
    """Bytes whose `decode` replaces malformed sequences with U+FFFD, as Java's decoder does."""

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes.decode(self, encoding, "replace")


class _LenientSlices:
    """A record buffer as kafka-python's record reader uses it: indexing gives the byte, and a
    slice gives `_LenientText`."""

    def __init__(self, raw: bytearray) -> None:
        self._raw = raw

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return _LenientText(self._raw[index])
        return self._raw[index]

    def __len__(self) -> int:
        return len(self._raw)
