"""Records every event it receives, one JSON line per invocation, for engine integration tests.

ESM_RECORDER_FILE: the file to append to (required).
ESM_RECORDER_FAIL_VALUE: when set, the invocation raises ValueError (after recording the event)
if any Kafka record's base64-decoded value equals it, so tests can drive retries and failures.
ESM_RECORDER_TEXT_ONLY: when set, the invocation raises UnicodeDecodeError (after recording the
event) if a Kafka value or Kinesis data is not UTF-8, as a handler that reads text does.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any


def handler(event: Any, context: Any) -> None:
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(event, separators=(",", ":")) + "\n")  # one write per invocation
        out.flush()
    fail_value = os.environ.get("ESM_RECORDER_FAIL_VALUE")
    text_only = bool(os.environ.get("ESM_RECORDER_TEXT_ONLY"))
    for where, data in _payloads(event):
        if fail_value is not None and data == fail_value.encode():
            raise ValueError(f"record {where} has the fail value {fail_value!r}")
        if text_only:
            data.decode("utf-8")
    return None


def _payloads(event: Any) -> Iterator[tuple[str, bytes]]:
    """(where, decoded bytes) of each Kafka record's value and Kinesis record's data."""
    for partition, records in (event.get("records") or {}).items():
        for record in records:
            if record.get("value") is not None:
                yield f"{partition}@{record.get('offset')}", base64.b64decode(record["value"])
    for record in event.get("Records") or ():
        if "data" in record.get("kinesis", {}):
            yield record["eventID"], base64.b64decode(record["kinesis"]["data"])
