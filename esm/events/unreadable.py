"""Records a reader could not decode: marked in their event entry, never sent to a function.

A record whose bytes a reader cannot turn into Lambda's event shape (confluent-kafka cannot read
header names that are not UTF-8; a stream record with a field of the wrong type) still has a
place in its partition or shard. The reader makes an entry for it with the fields it could
read, at least those that place it (offset, sequence number, time, partition key), and marks
the entry with `UNREADABLE` holding the reason. The shard consumer gives such a record up on its
own to the on-failure destination (condition `RecordUnreadable`, the entry with its reason in
the payload) and its partition moves on; a filter never drops it. Text that is merely not valid
Unicode is not unreadable: see `valid_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The key, in an event entry, of why its record could not be read. Not a Lambda field: no
# entry that reaches a function has it.
UNREADABLE = "esm:unreadable"


def mark_unreadable(entry: dict[str, Any], reason: str) -> dict[str, Any]:
    entry[UNREADABLE] = valid_text(reason)  # it may quote a name that is not valid text
    return entry


def unreadable_reason(entry: Mapping[str, Any]) -> str | None:
    reason = entry.get(UNREADABLE)
    return None if reason is None else str(reason)


def unreadable_positions(entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """Where the unreadable entries are in `entries`."""
    return [index for index, entry in enumerate(entries) if UNREADABLE in entry]


def valid_text(text: str) -> str:
    """`text` with each unpaired UTF-16 surrogate replaced by U+FFFD.

    JSON in UTF-8 (every event) cannot carry an unpaired surrogate, yet DynamoDB Local returns
    them in string attributes. Java's UTF-8 decoder, and so Lambda's Kafka client, turns bytes
    that are not UTF-8 into U+FFFD the same way (esm.sources.kafka_python_headers); the record
    is delivered with the replacement rather than held back.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_REPLACEMENT if _SURROGATES_FIRST <= ord(c) <= _SURROGATES_LAST else c for c in text)
    return text


_REPLACEMENT = "\ufffd"
_SURROGATES_FIRST, _SURROGATES_LAST = 0xD800, 0xDFFF
