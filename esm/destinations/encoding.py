"""One failure record <-> the bytes every destination stores (compact JSON via orjson).

Reading is forgiving: a destination may hold a line torn by a crash or a full disk, or anything
else someone wrote there. `read_entry` returns such an entry as an `UnreadableEntry` naming its
place and what is wrong, so a reader (`esm replay`) can count it, say so, and go on to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from esm.destinations.errors import DestinationRejectedError

# Quoted from an unreadable entry at most (a torn line may be megabytes of payload).
_SHOWN_BYTES = 60


@dataclass(frozen=True)
class UnreadableEntry:
    """A stored entry that is not a record: `where` it is, and `reason` (not JSON, not an object)."""

    where: str
    reason: str

    @property
    def text(self) -> str:
        return f"{self.where} {self.reason}"


StoredEntry = dict[str, Any] | UnreadableEntry


def encode_record(record: dict[str, Any]) -> bytes:
    """The record as JSON; a record that cannot be JSON is refused (no destination could store it)."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError as exc:
        raise DestinationRejectedError(
            f"Destination: the failure record is not JSON-serialisable: {exc}"
        ) from exc


def read_entry(data: bytes | str, where: str) -> StoredEntry:
    """A stored record back as a dict, or why it is not one; `where` names its place (file and
    line, stream and entry id, topic partition and offset)."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return UnreadableEntry(where, f"is not valid JSON ({exc}): {_start_of(data)}")
    if not isinstance(record, dict):
        return UnreadableEntry(where, f"holds a JSON {type(record).__name__}, not a record object")
    return record


def _start_of(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    shown = repr(raw[:_SHOWN_BYTES])
    return shown if len(raw) <= _SHOWN_BYTES else f"{shown}... ({len(raw)} bytes)"
