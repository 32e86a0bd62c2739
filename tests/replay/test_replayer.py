"""The replay of each record against a scripted fake invoker; waits are recorded, never slept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest

from esm.destinations.encoding import StoredEntry, UnreadableEntry
from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.replay.replayer import (
    DryRun,
    RecordReplayer,
    ReplayResult,
    ReplayTally,
    RetryPolicy,
    replay_records,
    report_line,
)

EVENT = {
    "eventSource": "SelfManagedKafka",
    "bootstrapServers": "127.0.0.1:9092",
    "records": {
        "orders-0": [{"topic": "orders", "partition": 0, "offset": o, "value": "eA=="} for o in (11, 12, 13)]
    },
}
RECORD = {
    "requestContext": {"condition": "RetryAttemptsExhausted"},
    "KafkaBatchInfo": {
        "batchSize": 3,
        "recordsInfo": {"orders-0": {"firstRecordOffset": "11", "lastRecordOffset": "13"}},
    },
    "payload": EVENT,
}
FUNCTION_ERROR = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", "poison"))
UNREACHABLE = InvokeOutcome(OutcomeKind.UNREACHABLE, detail="127.0.0.1:1: UNAVAILABLE: connection refused")
OK = InvokeOutcome.success(b"null")


class FakeInvoker:
    """Answers with the scripted outcomes in turn and keeps every payload it was given."""

    def __init__(self, outcomes: Iterable[InvokeOutcome]) -> None:
        self._outcomes = list(outcomes)
        self.payloads: list[bytes] = []

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        self.payloads.append(payload)
        return self._outcomes.pop(0)


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def replayer(invoker: FakeInvoker, waits: Waits, read_batch_responses: bool = False) -> RecordReplayer:
    return RecordReplayer(
        invoker.invoke,
        read_batch_responses=read_batch_responses,
        policy=RetryPolicy(attempts=3, first_backoff_seconds=0.5),
        sleep=waits,
    )


async def test_success_invokes_once_with_the_payload_as_the_function_first_saw_it() -> None:
    invoker, waits = FakeInvoker([OK]), Waits()
    report = await replayer(invoker, waits).replay(RECORD)
    assert report.result is ReplayResult.SUCCEEDED
    assert report.text == "succeeded on attempt 1"
    assert [orjson.loads(p) for p in invoker.payloads] == [EVENT]
    assert list(orjson.loads(invoker.payloads[0])) == list(EVENT)  # same key order: same event shape
    assert waits.seconds == []


async def test_a_function_error_is_retried_after_a_short_backoff() -> None:
    invoker, waits = FakeInvoker([FUNCTION_ERROR, OK]), Waits()
    report = await replayer(invoker, waits).replay(RECORD)
    assert report.result is ReplayResult.SUCCEEDED
    assert report.text == "succeeded on attempt 2"
    assert len(invoker.payloads) == 2 and invoker.payloads[0] == invoker.payloads[1]
    assert waits.seconds == [0.5]


@pytest.mark.parametrize("outcome", [FUNCTION_ERROR, UNREACHABLE])
async def test_a_record_that_keeps_failing_counts_as_failed_after_three_attempts(
    outcome: InvokeOutcome,
) -> None:
    invoker, waits = FakeInvoker([outcome] * 3), Waits()
    report = await replayer(invoker, waits).replay(RECORD)
    assert report.result is ReplayResult.FAILED
    assert len(invoker.payloads) == 3
    assert waits.seconds == [0.5, 1.0]  # doubling, and no wait after the last attempt
    assert report.text.startswith("failed after 3 attempts; last: ")
    assert outcome.describe() in report.text and outcome.kind.value in report.text


async def test_a_timeout_then_unreachable_then_success() -> None:
    timeout = InvokeOutcome(OutcomeKind.TIMEOUT, error=FunctionError("Sandbox.Timedout", "no answer"))
    invoker, waits = FakeInvoker([timeout, UNREACHABLE, OK]), Waits()
    report = await replayer(invoker, waits).replay(RECORD)
    assert report.result is ReplayResult.SUCCEEDED and report.text == "succeeded on attempt 3"


@pytest.mark.parametrize("payload", ["absent", None])
async def test_a_record_without_payload_is_skipped_and_says_how_to_fix_that(payload: Any) -> None:
    record = {k: v for k, v in RECORD.items() if k != "payload"}
    if payload is None:
        record["payload"] = None
    invoker, waits = FakeInvoker([]), Waits()
    report = await replayer(invoker, waits).replay(record)
    assert report.result is ReplayResult.SKIPPED
    assert invoker.payloads == []
    assert "only metadata" in report.detail and "IncludePayload: true" in report.detail


async def test_a_partial_batch_response_names_the_first_failed_item_and_is_not_retried() -> None:
    response = orjson.dumps(
        {
            "batchItemFailures": [
                {"itemIdentifier": {"partition": "orders-0", "offset": 13}},
                {"itemIdentifier": {"partition": "orders-0", "offset": 12}},
            ]
        }
    )
    invoker, waits = FakeInvoker([InvokeOutcome.success(response)]), Waits()
    report = await replayer(invoker, waits, read_batch_responses=True).replay(RECORD)
    assert report.result is ReplayResult.PARTIALLY_FAILED
    assert report.text.startswith("partially failed from orders-0 offset 12 on attempt 1: ")
    assert "batchItemFailures" in report.text
    assert len(invoker.payloads) == 1 and waits.seconds == []


async def test_the_answer_is_not_read_when_the_function_does_not_report_item_failures() -> None:
    response = orjson.dumps(
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 12}}]}
    )
    invoker = FakeInvoker([InvokeOutcome.success(response)])
    report = await replayer(invoker, Waits(), read_batch_responses=False).replay(RECORD)
    assert report.result is ReplayResult.SUCCEEDED


@pytest.mark.parametrize("answer", [b"null", b"{}", b'{"batchItemFailures": []}', b""])
async def test_an_answer_reporting_no_failed_items_is_a_success(answer: bytes) -> None:
    invoker = FakeInvoker([InvokeOutcome.success(answer)])
    report = await replayer(invoker, Waits(), read_batch_responses=True).replay(RECORD)
    assert report.result is ReplayResult.SUCCEEDED


async def test_an_invalid_partial_response_fails_the_whole_batch_and_is_retried() -> None:
    unknown = orjson.dumps(
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 99}}]}
    )
    invoker, waits = FakeInvoker([InvokeOutcome.success(unknown)] * 3), Waits()
    report = await replayer(invoker, waits, read_batch_responses=True).replay(RECORD)
    assert report.result is ReplayResult.FAILED
    assert len(invoker.payloads) == 3
    assert "invalid partial batch response" in report.text and "not in the batch" in report.text


def test_the_retry_policy_refuses_zero_attempts() -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)


async def records(*items: StoredEntry) -> AsyncIterator[StoredEntry]:
    for item in items:
        yield item


async def test_replay_records_goes_on_after_a_failure_and_counts_every_result() -> None:
    no_payload = {k: v for k, v in RECORD.items() if k != "payload"}
    invoker = FakeInvoker([*[FUNCTION_ERROR] * 3, OK])
    lines: list[str] = []
    tally = ReplayTally()
    await replay_records(records(RECORD, no_payload, RECORD), replayer(invoker, Waits()), tally, lines.append)
    assert [line.split(": ")[0] for line in lines] == ["record 1", "record 2", "record 3"]
    assert "failed after 3 attempts" in lines[0]
    assert "skipped (no payload)" in lines[1]
    assert lines[2].endswith("succeeded on attempt 1")
    assert tally.summary() == "replayed 3: 1 succeeded, 1 failed, 1 skipped (no payload)"
    assert tally.exit_code == 1


def test_the_tally_counts_a_partial_failure_as_failed_and_exits_zero_without_failures() -> None:
    tally = ReplayTally()
    for result in (ReplayResult.SUCCEEDED, ReplayResult.SKIPPED):
        tally.add(result)
    assert tally.exit_code == 0
    tally.add(ReplayResult.PARTIALLY_FAILED)
    assert (tally.total, tally.failed, tally.exit_code) == (3, 1, 1)


async def test_a_report_line_names_condition_batch_and_outcome() -> None:
    report = await replayer(FakeInvoker([OK]), Waits()).replay(RECORD)
    assert report_line(4, RECORD, report) == (
        "record 4: RetryAttemptsExhausted, Kafka orders-0 offsets 11-13 (3 records): succeeded on attempt 1"
    )


async def test_an_unreadable_entry_is_named_counted_and_passed_over() -> None:
    torn = UnreadableEntry("file '/f.jsonl' line 2", "is not valid JSON (unexpected end): b'{\"req'")
    invoker = FakeInvoker([OK, OK])
    lines: list[str] = []
    tally = ReplayTally()
    await replay_records(records(RECORD, torn, RECORD), replayer(invoker, Waits()), tally, lines.append)
    assert lines[1] == (
        "record 2: unreadable and skipped: file '/f.jsonl' line 2 is not valid JSON (unexpected end): "
        "b'{\"req'"
    )
    assert lines[2].startswith("record 3: ") and lines[2].endswith("succeeded on attempt 1")
    assert (
        tally.summary() == "replayed 3: 2 succeeded, 0 failed, 0 skipped (no payload), 1 unreadable (skipped)"
    )
    assert tally.exit_code == 1  # something in the destination needs a look


@pytest.mark.parametrize(
    "record",
    [
        {"hello": "world"},
        {"payload": RECORD["payload"]},  # an event, but no failure record around it
        {"requestContext": {}, "payload": RECORD["payload"]},
    ],
)
async def test_an_object_that_is_no_failure_record_is_not_replayed(record: dict[str, Any]) -> None:
    invoker = FakeInvoker([])
    report = await replayer(invoker, Waits()).replay(record)
    assert report.result is ReplayResult.UNREADABLE
    assert report.text.startswith(
        "unreadable and skipped: it is not a failure record (one has a requestContext"
    )
    assert invoker.payloads == []


async def test_a_dry_run_reports_what_would_be_replayed() -> None:
    tally = ReplayTally(dry_run=True)
    lines: list[str] = []
    no_payload = {k: v for k, v in RECORD.items() if k != "payload"}
    await replay_records(records(RECORD, no_payload), DryRun(), tally, lines.append)
    size = len(orjson.dumps(EVENT))
    assert lines[0].endswith(f": would replay (an event of {size} bytes, 3 items)")
    assert "skipped (no payload)" in lines[1]
    assert tally.summary() == "dry run: 1 of 2 would be replayed, 1 skipped (no payload); nothing was invoked"
    assert tally.exit_code == 0


async def test_a_record_given_up_as_unreadable_is_not_replayed() -> None:
    record = {**RECORD, "requestContext": {"condition": "RecordUnreadable"}}
    invoker = FakeInvoker([])
    report = await replayer(invoker, Waits()).replay(record)
    assert report.result is ReplayResult.UNREADABLE
    assert "could not be read from the source" in report.text and "event is incomplete" in report.text
    assert invoker.payloads == []
