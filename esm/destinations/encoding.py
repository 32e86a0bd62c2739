"""One failure record <-> the bytes every destination stores (compact JSON via orjson)."""

from __future__ import annotations

from typing import Any

import orjson

from esm.destinations.errors import DestinationError, DestinationRejectedError


def encode_record(record: dict[str, Any]) -> bytes:
    """The record as JSON; a record that cannot be JSON is refused (no destination could store it)."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError as exc:
        raise DestinationRejectedError(
            f"Destination: the failure record is not JSON-serialisable: {exc}"
        ) from exc


def decode_record(data: bytes | str, where: str) -> dict[str, Any]:
    """A stored record back as a dict; `where` names its place (file and line, stream and entry id)."""
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DestinationError(f"Destination: {where} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise DestinationError(
            f"Destination: {where} holds a JSON {type(record).__name__}, not a record object"
        )
    return record
