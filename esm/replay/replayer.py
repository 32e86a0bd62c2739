"""Replaying failure records one at a time: invoke, retry a few times, report (no I/O of its own).

The invocation and the wait between attempts come in as callables, so this is tested with a
fake invoker and no clock. For each entry of the destination:

- an entry that cannot be read (a line torn by a crash or a full disk, not JSON) or is no
  failure record (an object someone else wrote there): UNREADABLE, named and skipped; the
  replay goes on with the next entry and exits non-zero at the end;
- no `payload` (the mapping set IncludePayload: false): SKIPPED, never invoked;
- the function succeeds: SUCCEEDED;
- it fails (function error, timeout, throttled, unreachable worker, or a partial batch response
  that is invalid, which Lambda treats as a whole-batch failure): try again after a short
  doubling backoff, up to `RetryPolicy.attempts` in all; then FAILED;
- it answers a valid partial batch response (only read when the function's mappings use
  ReportBatchItemFailures): PARTIALLY_FAILED, naming the first failed item. Not retried: a new
  invocation would hand the function the items it has already processed once more.

A dry run (`DryRun`) reads the same way and reports WOULD_REPLAY instead of invoking.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from esm.destinations.encoding import StoredEntry, UnreadableEntry
from esm.destinations.record import FailureCondition
from esm.dispatch.outcomes import InvokeOutcome, OutcomeKind
from esm.replay.batch_items import batch_items
from esm.replay.describe import condition_of, not_a_failure_record, record_label
from esm.shard.batch_response import SUCCEEDED, Verdict, read_batch_response

Invoke = Callable[[bytes], Awaitable[InvokeOutcome]]
Sleep = Callable[[float], Awaitable[None]]

NO_PAYLOAD = (
    "(no payload): the record has only metadata, because its mapping set DestinationConfig.OnFailure."
    "IncludePayload: false, so there is no event to replay; set IncludePayload: true (the default) "
    "for future failures to be replayable"
)

SOURCE_UNREADABLE = (
    "its record could not be read from the source (RecordUnreadable: the payload's entry says why), "
    "so it never reached the function and its event is incomplete"
)


class ReplayResult(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially failed"
    SKIPPED = "skipped"
    UNREADABLE = "unreadable"
    WOULD_REPLAY = "would replay"


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
        refusal, payload = _replayable(record)
        if refusal is not None:
            return refusal
        event = record["payload"]
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


def _replayable(record: Mapping[str, Any]) -> tuple[RecordReport | None, bytes]:
    """The report of a record that is not to be invoked, else (None, the event to invoke with)."""
    reason = not_a_failure_record(record)
    if reason is not None:
        return RecordReport(ReplayResult.UNREADABLE, f"and skipped: {reason}"), b""
    if condition_of(record) == FailureCondition.RECORD_UNREADABLE.value:
        return RecordReport(ReplayResult.UNREADABLE, f"and skipped: {SOURCE_UNREADABLE}"), b""
    event = record.get("payload")
    if event is None:
        return RecordReport(ReplayResult.SKIPPED, NO_PAYLOAD), b""
    try:
        return None, orjson.dumps(event)
    except orjson.JSONEncodeError as exc:
        failed = f"before invoking: its payload cannot be encoded as JSON again ({exc})"
        return RecordReport(ReplayResult.FAILED, failed), b""


class DryRun:
    """`esm replay --dry-run`: reads and reports each record as a replay would, invokes nothing."""

    async def replay(self, record: Mapping[str, Any]) -> RecordReport:
        refusal, payload = _replayable(record)
        if refusal is not None:
            return refusal
        items = len(batch_items(record["payload"]).names)
        return RecordReport(
            ReplayResult.WOULD_REPLAY, f"(an event of {len(payload)} bytes, {items} item{'s' * (items != 1)})"
        )


class Replayer(Protocol):
    async def replay(self, record: Mapping[str, Any]) -> RecordReport: ...


def _on_attempt(attempt: int) -> str:
    return f"on attempt {attempt}"


@dataclass
class ReplayTally:
    """Counts of a replay run; a partially failed record counts as failed."""

    dry_run: bool = False
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    unreadable: int = 0
    would_replay: int = 0

    def add(self, result: ReplayResult) -> None:
        if result is ReplayResult.SUCCEEDED:
            self.succeeded += 1
        elif result is ReplayResult.SKIPPED:
            self.skipped += 1
        elif result is ReplayResult.UNREADABLE:
            self.unreadable += 1
        elif result is ReplayResult.WOULD_REPLAY:
            self.would_replay += 1
        else:
            self.failed += 1

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.skipped + self.unreadable + self.would_replay

    def summary(self) -> str:
        unreadable = f", {self.unreadable} unreadable (skipped)" if self.unreadable else ""
        if self.dry_run:
            return (
                f"dry run: {self.would_replay} of {self.total} would be replayed, "
                f"{self.skipped} skipped (no payload){unreadable}; nothing was invoked"
            )
        return (
            f"replayed {self.total}: {self.succeeded} succeeded, {self.failed} failed, "
            f"{self.skipped} skipped (no payload){unreadable}"
        )

    @property
    def exit_code(self) -> int:
        """1 when a record failed or an entry could not be read, else 0."""
        return 0 if self.failed == 0 and self.unreadable == 0 else 1


def report_line(number: int, record: Mapping[str, Any], report: RecordReport) -> str:
    """`record <n>: <condition>, <batch summary>: <result> <detail>`."""
    return f"record {number}: {record_label(record)}: {report.text}"


def unreadable_line(number: int, entry: UnreadableEntry) -> str:
    """`record <n>: unreadable and skipped: <where> <what is wrong>`."""
    return f"record {number}: {ReplayResult.UNREADABLE.value} and skipped: {entry.text}"


async def replay_records(
    entries: AsyncIterable[StoredEntry],
    replayer: Replayer,
    tally: ReplayTally,
    emit: Callable[[str], None],
) -> None:
    """Replay every record in order, emitting one line each and counting into `tally`; an entry
    that cannot be read is named, counted and passed over.

    A destination read error propagates; `tally` then holds what was replayed before it.
    """
    number = 0
    async for entry in entries:
        number += 1
        if isinstance(entry, UnreadableEntry):
            tally.add(ReplayResult.UNREADABLE)
            emit(unreadable_line(number, entry))
            continue
        report = await replayer.replay(entry)
        tally.add(report.result)
        emit(report_line(number, entry, report))
