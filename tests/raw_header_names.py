"""Kafka header names of any bytes, for tests. The Python clients encode names as UTF-8 text and
Java's takes a String, but the protocol carries bytes and other clients write any: kafka-python's
record builder writes a `RawName` as its bytes."""

from __future__ import annotations


class RawName(str):
    """A header name that kafka-python's record builder writes as the given bytes."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawName:
        name = super().__new__(cls, raw.decode("latin-1"))
        name.raw = raw
        return name

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw
