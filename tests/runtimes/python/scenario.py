"""A Python handler for AWS's awslambdaric: does what its records ask (see ../README.md)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

if os.environ.get("ESM_SCENARIO_INIT_FAIL"):
    raise ImportError("init failed on purpose (ESM_SCENARIO_INIT_FAIL is set)")


class ScenarioError(Exception):
    pass


def items(event: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    """(the record's itemIdentifier for a partial batch response, its value as text)."""
    for key, records in (event.get("records") or {}).items():  # Kafka
        for record in records:
            value = base64.b64decode(record.get("value") or "").decode()
            yield {"partition": key, "offset": record["offset"]}, value
    for record in event.get("Records") or ():  # Kinesis
        yield record["kinesis"]["sequenceNumber"], base64.b64decode(record["kinesis"]["data"]).decode()


def action(event: dict[str, Any]) -> tuple[str, list[Any]]:
    """What to do for this event, and the identifiers to report as failed."""
    found = list(items(event))
    values = {value for _, value in found}
    for word in ("fail", "sleep", "crash", "oom"):
        if word in values:
            return word, []
    return "respond", [identifier for identifier, value in found if value == "partial"]


def handler(event: dict[str, Any], context: Any) -> Any:
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(event, separators=(",", ":")) + "\n")
    what, failed = action(event)
    if what == "fail":
        raise ScenarioError("a record asked to fail")
    if what == "sleep":
        time.sleep(30)
    if what == "crash":
        os._exit(3)
    if what == "oom":
        hog = b"x" * (400 * 1024 * 1024)
        return len(hog)
    return {"batchItemFailures": [{"itemIdentifier": identifier} for identifier in failed]}
