"""Reading a function's partial batch response (FunctionResponseTypes: [ReportBatchItemFailures]).

Lambda's rules, exactly:
- complete success: a null or empty response (`null`, `""`, `{}`, `[]`), or `batchItemFailures`
  null, empty or absent;
- complete failure: any reported item whose `itemIdentifier` is null, empty, not one of the
  batch's identifiers, or missing (a wrong key name such as `{"foo": ...}`), and a
  `batchItemFailures` that is not a list of objects;
- otherwise the batch failed from the LOWEST reported record on: the records before it succeeded.
Identifiers are the source's: Kafka `{"partition": "<topic>-<partition>", "offset": N}`, Kinesis
and DynamoDB the record's sequence number. The source supplies `index_of` to find one.
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


def read_batch_response(body: bytes | None, index_of: Callable[[Any], int | None]) -> BatchResponse:
    try:
        response = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return BatchResponse(Verdict.FAILED, reason="the response is not JSON")
    if not isinstance(response, dict):
        return SUCCEEDED  # null, "", [] and other non-object responses report no failures
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return SUCCEEDED
    if not isinstance(failures, list):
        return BatchResponse(Verdict.FAILED, reason="batchItemFailures is not a list")
    lowest: int | None = None
    reported: set[int] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return BatchResponse(
                Verdict.FAILED, reason=f"a batch item failure has no itemIdentifier: {item!r}"
            )
        identifier = item["itemIdentifier"]
        if identifier is None or identifier == "" or identifier == {}:
            return BatchResponse(Verdict.FAILED, reason=f"an itemIdentifier is empty: {identifier!r}")
        index = index_of(identifier)
        if index is None:
            return BatchResponse(Verdict.FAILED, reason=f"itemIdentifier {identifier!r} is not in the batch")
        lowest = index if lowest is None else min(lowest, index)
        reported.add(index)
    assert lowest is not None
    return BatchResponse(Verdict.FAILED_FROM, first_failed=lowest, reported=len(reported))
