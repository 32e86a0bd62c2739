"""Replaying failure records one at a time: invoke, retry a few times, report (no I/O of its own).

The invocation and the wait between attempts come in as callables, so this is tested with a
fake invoker and no clock. For each record:

- no `payload` (the mapping set IncludePayload: false): SKIPPED, never invoked;
- the function succeeds: SUCCEEDED;
- it fails (function error, timeout, throttled, unreachable worker, or a partial batch response
  that is invalid, which Lambda treats as a whole-batch failure): try again after a short
  doubling backoff, up to `RetryPolicy.attempts` in all; then FAILED;
- it answers a valid partial batch response (only read when the function's mappings use
  ReportBatchItemFailures): PARTIALLY_FAILED, naming the first failed item. Not retried: a new
  invocation would hand the function the items it has already processed once more.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.replay.batch_items import batch_items
from esm.replay.describe import record_label
from esm.shard.batch_response import SUCCEEDED, Verdict, read_batch_response

Invoke = Callable[[bytes], Awaitable[InvokeOutcome]]
Sleep = Callable[[float], Awaitable[None]]

NO_PAYLOAD = (
    "(no payload): the record has only metadata, because its mapping set DestinationConfig.OnFailure."
    "IncludePayload: false, so there is no event to replay; set IncludePayload: true (the default) "
    "for future failures to be replayable"
)


class ReplayResult(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RecordReport:
    result: ReplayResult
    # Follows the result's name in the report line: "on attempt 2", "after 3 attempts; last: ...".
    detail: str

    @property
    def text(self) -> str:
        return f"{self.result.value} {self.detail}"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    first_backoff_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        if self.first_backoff_seconds < 0:
            raise ValueError(
                f"RetryPolicy.first_backoff_seconds must be >= 0, got {self.first_backoff_seconds}"
            )

    def backoff_after(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based): doubling from the first."""
        return float(self.first_backoff_seconds * 2 ** (attempt - 1))


class RecordReplayer:
    """Replays one failure record at a time through `invoke`."""

    def __init__(
        self,
        invoke: Invoke,
        *,
        read_batch_responses: bool,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`read_batch_responses`: the function uses ReportBatchItemFailures, so a successful
        answer may still report failed items (otherwise its answer is not looked at)."""
        self._invoke = invoke
        self._read_batch_responses = read_batch_responses
        self._policy = policy or RetryPolicy()
        self._sleep = sleep

    async def replay(self, record: Mapping[str, Any]) -> RecordReport:
        event = record.get("payload")
        if event is None:
            return RecordReport(ReplayResult.SKIPPED, NO_PAYLOAD)
        try:
            payload = orjson.dumps(event)
        except orjson.JSONEncodeError as exc:
            return RecordReport(
                ReplayResult.FAILED, f"before invoking: its payload cannot be encoded as JSON again ({exc})"
            )
        attempts = self._policy.attempts
        last_failure = ""
        for attempt in range(1, attempts + 1):
            outcome = await self._invoke(payload)
            if outcome.kind is OutcomeKind.SUCCESS:
                report, last_failure = self._read_answer(event, outcome.response, attempt)
                if report is not None:
                    return report
            else:
                last_failure = f"{outcome.kind.value}: {outcome.describe()}"
            if attempt < attempts:
                await self._sleep(self._policy.backoff_after(attempt))
        return RecordReport(ReplayResult.FAILED, f"after {attempts} attempts; last: {last_failure}")

    def _read_answer(
        self, event: Any, response: bytes | None, attempt: int
    ) -> tuple[RecordReport | None, str]:
        """The record's report when the answer settles it, else (None, why it counts as a failure)."""
        if not self._read_batch_responses:
            return RecordReport(ReplayResult.SUCCEEDED, _on_attempt(attempt)), ""
        items = batch_items(event)
        answer = read_batch_response(response, items.index_of)
        if answer == SUCCEEDED:
            return RecordReport(ReplayResult.SUCCEEDED, _on_attempt(attempt)), ""
        if answer.verdict is Verdict.FAILED_FROM:
            detail = (
                f"from {items.name(answer.first_failed)} {_on_attempt(attempt)}: the function reported "
                "batchItemFailures; the items before it succeeded (not retried, so that they are not "
                "processed twice)"
            )
            return RecordReport(ReplayResult.PARTIALLY_FAILED, detail), ""
        return None, f"the whole batch failed: invalid partial batch response ({answer.reason})"


def _on_attempt(attempt: int) -> str:
    return f"on attempt {attempt}"


@dataclass
class ReplayTally:
    """Counts of a replay run; a partially failed record counts as failed."""

    succeeded: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, result: ReplayResult) -> None:
        if result is ReplayResult.SUCCEEDED:
            self.succeeded += 1
        elif result is ReplayResult.SKIPPED:
            self.skipped += 1
        else:
            self.failed += 1

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.skipped

    def summary(self) -> str:
        return (
            f"replayed {self.total}: {self.succeeded} succeeded, {self.failed} failed, "
            f"{self.skipped} skipped (no payload)"
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.failed == 0 else 1


def report_line(number: int, record: Mapping[str, Any], report: RecordReport) -> str:
    """`record <n>: <condition>, <batch summary>: <result> <detail>`."""
    return f"record {number}: {record_label(record)}: {report.text}"


async def replay_records(
    records: AsyncIterable[dict[str, Any]],
    replayer: RecordReplayer,
    tally: ReplayTally,
    emit: Callable[[str], None],
) -> None:
    """Replay every record in order, emitting one line each and counting into `tally`.

    A destination read error propagates; `tally` then holds what was replayed before it.
    """
    number = 0
    async for record in records:
        number += 1
        report = await replayer.replay(record)
        tally.add(report.result)
        emit(report_line(number, record, report))
