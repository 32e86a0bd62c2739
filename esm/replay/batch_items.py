"""The items of an invocation event, as a partial batch response names them (pure).

Kafka events name an item `{"partition": "<topic>-<partition>", "offset": N}`; Kinesis and
DynamoDB Streams events name it by its sequence number. `BatchItems` finds a reported
identifier's position (for `read_batch_response`) and names an item for the report.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The sequence number's place in each stream source's event record.
_SEQUENCE_FIELDS = (("kinesis", "sequenceNumber"), ("dynamodb", "SequenceNumber"))


@dataclass(frozen=True)
class BatchItems:
    """One event's item identifiers, in event order."""

    names: tuple[str, ...]
    _index: Mapping[Hashable, int]

    def index_of(self, identifier: Any) -> int | None:
        """The position of the item a partial response names, None if the event has no such item."""
        key = _identifier_key(identifier)
        return None if key is None else self._index.get(key)

    def name(self, index: int) -> str:
        return self.names[index] if 0 <= index < len(self.names) else f"item #{index}"


def batch_items(event: Any) -> BatchItems:
    """The items of a Kafka, Kinesis or DynamoDB Streams event; none for any other shape."""
    keys: list[Hashable] = []
    names: list[str] = []
    if isinstance(event, Mapping) and isinstance(event.get("records"), Mapping):
        for partition, entries in event["records"].items():
            for entry in entries if isinstance(entries, Sequence) else ():
                offset = entry.get("offset") if isinstance(entry, Mapping) else None
                if type(offset) is int:
                    keys.append((str(partition), offset))
                    names.append(f"{partition} offset {offset}")
    elif isinstance(event, Mapping) and isinstance(event.get("Records"), Sequence):
        for entry in event["Records"]:
            sequence = _sequence_number(entry)
            if sequence is not None:
                keys.append(sequence)
                names.append(f"sequence number {sequence}")
    index: dict[Hashable, int] = {}
    for position, key in enumerate(keys):
        index.setdefault(key, position)
    return BatchItems(names=tuple(names), _index=index)


def _sequence_number(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    for section, field in _SEQUENCE_FIELDS:
        part = entry.get(section)
        if isinstance(part, Mapping) and isinstance(part.get(field), str):
            return str(part[field])
    return None


def _identifier_key(identifier: Any) -> Hashable | None:
    if isinstance(identifier, str):
        return identifier
    if isinstance(identifier, Mapping):
        partition, offset = identifier.get("partition"), identifier.get("offset")
        # `type(...) is int`: JSON true must not pass for offset 1.
        if isinstance(partition, str) and type(offset) is int:
            return (partition, offset)
    return None
