"""Reading a function's partial batch response (FunctionResponseTypes: [ReportBatchItemFailures]).

AWS documents the complete successes (a null or empty response, `batchItemFailures` null or
empty) and a few complete failures (an `itemIdentifier` that is null, empty, under a wrong key
name, or names no record of the batch; a response that is not JSON), and says Lambda "treats all
other results as a complete failure". So every shape is read as one of:
- SUCCEEDED: `null`, `""`, `{}`, `[]`, or an object whose `batchItemFailures` is null, empty or
  absent (AWS's recorded scenarios include `""` and `[]`);
- FAILED (the whole batch, with the reason): anything else that is not such an object (a
  non-empty list such as `[{"itemIdentifier": 5}]`, a string, a number, a boolean), a
  `batchItemFailures` that is not a list, an item that is not an object or has no
  `itemIdentifier`, an identifier that is null, empty, of the wrong type for the source, or not
  in the batch, and a body that is not JSON;
- FAILED_FROM: every identifier names a record of the batch: the batch failed from the LOWEST
  of them on; the records before it succeeded.
Identifiers are the source's: Kafka `{"partition": "<topic>-<partition>", "offset": N}`, Kinesis
and DynamoDB the record's sequence number (a string). The source supplies `index_of` to find
one; it answers None for an identifier of another type. README's "Partial batch responses"
table lists each shape with its verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson


class Verdict(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FAILED_FROM = "failed_from"


@dataclass(frozen=True)
class BatchResponse:
    verdict: Verdict
    # FAILED_FROM: the index (in the invoked batch) of the lowest failed record, and how many
    # records the response named.
    first_failed: int = 0
    reported: int = 0
    # FAILED: why the response counts as a whole-batch failure (for logs and status).
    reason: str = ""


SUCCEEDED = BatchResponse(Verdict.SUCCEEDED)


def _failed(reason: str) -> BatchResponse:
    return BatchResponse(Verdict.FAILED, reason=reason)


def read_batch_response(body: bytes | None, index_of: Callable[[Any], int | None]) -> BatchResponse:
    try:
        response = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return _failed("the response is not JSON")
    if response is None or (isinstance(response, str | list | dict) and not response):
        return SUCCEEDED  # null, "", [], {} (not 0 or false: those are no empty response)
    if not isinstance(response, dict):
        return _failed(f"the response is not an object with batchItemFailures: {_short(response)}")
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return SUCCEEDED
    if not isinstance(failures, list):
        return _failed(f"batchItemFailures is not a list: {_short(failures)}")
    lowest: int | None = None
    reported: set[int] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return _failed(f"a batch item failure has no itemIdentifier: {_short(item)}")
        identifier = item["itemIdentifier"]
        if identifier is None or identifier == "" or identifier == {}:
            return _failed(f"an itemIdentifier is empty: {_short(identifier)}")
        index = index_of(identifier)
        if index is None:
            return _failed(f"itemIdentifier {_short(identifier)} is not in the batch")
        lowest = index if lowest is None else min(lowest, index)
        reported.add(index)
    assert lowest is not None
    return BatchResponse(Verdict.FAILED_FROM, first_failed=lowest, reported=len(reported))


_LONGEST_SHOWN = 100


def _short(value: Any) -> str:
    """A value for a reason: its JSON, cut short (a response may be megabytes)."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= _LONGEST_SHOWN else f"{text[:_LONGEST_SHOWN]}... ({len(text)} characters)"
