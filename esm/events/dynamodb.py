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
from datetime import datetime
from typing import Any

import orjson

# One record as the event carries it (the dict `event_record` makes).
EventRecord = dict[str, Any]

# Copied from the API record in this order (Lambda's), when present.
_RECORD_FIELDS = ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion")
_IMAGE_FIELDS = ("Keys", "NewImage", "OldImage")
_STREAM_FIELDS_AFTER_IMAGES = ("SequenceNumber", "SizeBytes", "StreamViewType")

# The comma between entries in the event's "Records" list.
_SEPARATOR_BYTES = 1


def event_record(record: Mapping[str, Any], stream_arn: str) -> EventRecord:
    """One record from boto3's `dynamodbstreams.get_records` as Lambda's event shows it."""
    stream_record = record.get("dynamodb")
    if not isinstance(stream_record, Mapping):
        raise ValueError(
            f"DynamoDB stream record {record.get('eventID')!r} of {stream_arn}: "
            f"dynamodb must be a mapping, got {type(stream_record).__name__}"
        )
    entry: EventRecord = {name: record[name] for name in _RECORD_FIELDS if name in record}
    entry["dynamodb"] = _stream_record(stream_record, f"{record.get('eventID')!r} of {stream_arn}")
    identity = record.get("userIdentity")
    if identity is not None:
        entry["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    entry["eventSourceARN"] = stream_arn
    return entry


def _stream_record(stream_record: Mapping[str, Any], where: str) -> dict[str, Any]:
    shaped: dict[str, Any] = {}
    created = stream_record.get("ApproximateCreationDateTime")
    if created is not None:
        shaped["ApproximateCreationDateTime"] = _epoch_seconds(created, where)
    for name in _IMAGE_FIELDS:
        image = stream_record.get(name)
        if image is not None:
            shaped[name] = {attribute: _wire_value(value) for attribute, value in image.items()}
    for name in _STREAM_FIELDS_AFTER_IMAGES:
        if name in stream_record:
            shaped[name] = stream_record[name]
    return shaped


def _epoch_seconds(created: object, where: str) -> int | float:
    """Whole seconds as an integer (DynamoDB Streams' precision), finer times as a float."""
    if isinstance(created, datetime):
        seconds = round(created.timestamp(), 3)
    elif isinstance(created, (int, float)) and not isinstance(created, bool):
        seconds = created
    else:
        raise ValueError(
            f"DynamoDB stream record {where}: ApproximateCreationDateTime must be a datetime or "
            f"epoch seconds, got {type(created).__name__}"
        )
    return int(seconds) if float(seconds).is_integer() else seconds


def _wire_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute value as DynamoDB JSON on the wire: binaries base64, the rest unchanged."""
    wire: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B":
            wire[kind] = _base64(inner)
        elif kind == "BS":
            wire[kind] = [_base64(item) for item in inner]
        elif kind == "M":
            wire[kind] = {name: _wire_value(item) for name, item in inner.items()}
        elif kind == "L":
            wire[kind] = [_wire_value(item) for item in inner]
        else:
            wire[kind] = inner
    return wire


def _base64(raw: bytes | str) -> str:
    # A client that returns raw JSON (no blob parsing) already hands over base64 text.
    return raw if isinstance(raw, str) else b2a_base64(raw, newline=False).decode("ascii")


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
