"""Lambda's DynamoDB Streams event shape.

    {"Records": [{"eventID", "eventName": "INSERT|MODIFY|REMOVE", "eventVersion": "1.1",
                  "eventSource": "aws:dynamodb", "awsRegion",
                  "dynamodb": {"ApproximateCreationDateTime": epoch seconds, "Keys", "NewImage",
                               "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"},
                  "userIdentity"?, "eventSourceARN"}]}

Keys come in the order Lambda delivers them; images are present only when the stream view type
and the event carry them. Attribute values stay in DynamoDB JSON ({"S": "x"}, {"N": "1"}, ...)
as boto3's low-level `dynamodbstreams.get_records` returns them, except that binary values
(B, BS, also inside M and L), which boto3 hands over as bytes, become base64 as on the wire.
A TTL deletion's `userIdentity` ({"PrincipalId", "Type"} in the API) is spelled
{"type", "principalId"} in Lambda's event. The shard reader turns each record into its event
entry once (`event_record`); a batch's event is those entries under "Records".
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

import orjson

from esm.events.unreadable import mark_unreadable, valid_text

# One record as the event carries it (the dict `event_record` makes).
EventRecord = dict[str, Any]

# Copied from the API record in this order (Lambda's), when present.
_RECORD_FIELDS = ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion")
_IMAGE_FIELDS = ("Keys", "NewImage", "OldImage")
_STREAM_FIELDS_AFTER_IMAGES = ("SequenceNumber", "SizeBytes", "StreamViewType")

# The comma between entries in the event's "Records" list.
_SEPARATOR_BYTES = 1


def event_record(record: Mapping[str, Any], stream_arn: str, read_at: float = 0.0) -> EventRecord:
    """One record from boto3's `dynamodbstreams.get_records` as Lambda's event shows it.

    A record with a malformed part gets an entry marked unreadable (esm.events.unreadable) with
    its place (SequenceNumber, Keys when readable; `read_at`, epoch seconds, for a creation time
    it lacks). A record without a sequence number has no place in the shard: ValueError. Strings
    with unpaired surrogates (DynamoDB Local keeps them) are delivered with U+FFFD in their place.
    """
    where = f"{record.get('eventID')!r} of {stream_arn}"
    stream_record = record.get("dynamodb")
    if not isinstance(stream_record, Mapping) or not isinstance(stream_record.get("SequenceNumber"), str):
        raise ValueError(
            f"DynamoDB stream record {where}: dynamodb must be a mapping with a SequenceNumber, "
            f"got {type(stream_record).__name__}"
        )
    entry: EventRecord = {name: record[name] for name in _RECORD_FIELDS if name in record}
    try:
        entry["dynamodb"] = _stream_record(stream_record)
        identity = record.get("userIdentity")
        if identity is not None:
            entry["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    except _Malformed as problem:
        entry["dynamodb"] = _placing_fields(stream_record, read_at)
        entry["eventSourceARN"] = stream_arn
        return mark_unreadable(entry, f"DynamoDB stream record {where}: {problem}")
    entry["eventSourceARN"] = stream_arn
    return entry


class _Malformed(ValueError):
    """A part of a stream record is not what DynamoDB Streams returns."""


def _stream_record(stream_record: Mapping[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {}
    created = stream_record.get("ApproximateCreationDateTime")
    if created is not None:
        shaped["ApproximateCreationDateTime"] = _epoch_seconds(created)
    for name in _IMAGE_FIELDS:
        image = stream_record.get(name)
        if image is not None:
            shaped[name] = _image(image, name)
    for name in _STREAM_FIELDS_AFTER_IMAGES:
        if name in stream_record:
            shaped[name] = stream_record[name]
    return shaped


def _placing_fields(stream_record: Mapping[str, Any], read_at: float) -> dict[str, Any]:
    """What places an unreadable record: its sequence number, creation time and item key."""
    try:
        created: int | float = _epoch_seconds(stream_record.get("ApproximateCreationDateTime"))
    except _Malformed:
        created = read_at
    placing: dict[str, Any] = {"ApproximateCreationDateTime": created}
    with suppress(_Malformed):  # without Keys, unreadable records of the shard share one lane
        placing["Keys"] = _image(stream_record.get("Keys"), "Keys")
    placing["SequenceNumber"] = stream_record["SequenceNumber"]
    return placing


def _epoch_seconds(created: object) -> int | float:
    """Whole seconds as an integer (DynamoDB Streams' precision), finer times as a float."""
    if isinstance(created, datetime):
        seconds = round(created.timestamp(), 3)
    elif isinstance(created, (int, float)) and not isinstance(created, bool):
        seconds = created
    else:
        raise _Malformed(
            f"ApproximateCreationDateTime must be a datetime or epoch seconds, got {type(created).__name__}"
        )
    return int(seconds) if float(seconds).is_integer() else seconds


def _image(image: object, name: str) -> dict[str, Any]:
    if not isinstance(image, Mapping):
        raise _Malformed(f"{name} must be a mapping, got {type(image).__name__}")
    shaped = {
        valid_text(str(attribute)): _wire_value(value, f"{name}.{attribute}")
        for attribute, value in image.items()
    }
    if len(shaped) < len(image):  # two names that differ only in their unpaired surrogates
        raise _Malformed(f"{name} has attribute names that are one once unpaired surrogates are replaced")
    return shaped


def _wire_value(value: object, where: str) -> dict[str, Any]:
    """An attribute value as DynamoDB JSON on the wire: binaries base64, text valid Unicode, the
    rest unchanged."""
    if not isinstance(value, Mapping):
        raise _Malformed(f"{where} must be an attribute value mapping, got {type(value).__name__}")
    wire: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B":
            wire[kind] = _base64(inner, where)
        elif kind == "BS":
            wire[kind] = [_base64(item, where) for item in _listed(inner, where)]
        elif kind == "S":
            wire[kind] = valid_text(inner) if isinstance(inner, str) else inner
        elif kind == "SS":
            wire[kind] = [
                valid_text(item) if isinstance(item, str) else item for item in _listed(inner, where)
            ]
        elif kind == "M":
            wire[kind] = _image(inner, where)
        elif kind == "L":
            wire[kind] = [_wire_value(item, where) for item in _listed(inner, where)]
        else:
            wire[kind] = inner
    return wire


def _listed(inner: object, where: str) -> list[Any]:
    if not isinstance(inner, list):
        raise _Malformed(f"{where} must hold a list, got {type(inner).__name__}")
    return inner


def _base64(raw: object, where: str) -> str:
    # A client that returns raw JSON (no blob parsing) already hands over base64 text.
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes):
        return b2a_base64(raw, newline=False).decode("ascii")
    raise _Malformed(f"{where} holds a binary that is {type(raw).__name__}, not bytes")


def estimated_entry_size(entry: EventRecord) -> int:
    """The entry's bytes in the event JSON (for the 6 MB cut).

    Nested attribute values make a field-by-field estimate a tree walk; orjson measures the
    entry exactly and faster than walking it in Python would.
    """
    return len(orjson.dumps(entry)) + _SEPARATOR_BYTES


class DynamoDBEventBuilder:
    """Builds the invocation payload for one shard's batch."""

    def build(self, entries: Sequence[EventRecord]) -> bytes:
        return orjson.dumps({"Records": entries})
