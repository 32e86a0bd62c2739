"""Records every event it receives, one JSON line per invocation, for engine integration tests.

ESM_RECORDER_FILE: the file to append to (required).
ESM_RECORDER_FAIL_VALUE: when set, the invocation raises ValueError (after recording the event)
if any Kafka record's base64-decoded value equals it, so tests can drive retries and failures.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any


def handler(event: Any, context: Any) -> None:
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(event, separators=(",", ":")) + "\n")  # one write per invocation
        out.flush()
    fail_value = os.environ.get("ESM_RECORDER_FAIL_VALUE")
    if fail_value is None:
        return None
    for partition, records in (event.get("records") or {}).items():
        for record in records:
            value = record.get("value")
            if value is not None and base64.b64decode(value) == fail_value.encode():
                raise ValueError(
                    f"record {partition}@{record.get('offset')} has the fail value {fail_value!r}"
                )
    return None
