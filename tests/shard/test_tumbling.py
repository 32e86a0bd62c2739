"""Tumbling-window logic: window bounds, the function's state, the event (read back with the
Powertools data classes that handlers use)."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, KinesisStreamEvent

from esm.events.dynamodb import DynamoDBEventBuilder
from esm.events.dynamodb import event_record as dynamodb_record
from esm.events.kinesis import KinesisEventBuilder, KinesisShardOrigin
from esm.events.kinesis import event_record as kinesis_record
from esm.shard.tumbling import (
    INITIAL_STATE,
    NO_RECORDS_EVENT,
    STATE_LIMIT_BYTES,
    StateProblem,
    Window,
    WindowEventFields,
    WindowState,
    check_window_seconds,
    format_utc,
    read_state,
    window_event,
    window_for,
)

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream"


@pytest.mark.parametrize(
    ("timestamp", "seconds", "start", "end"),
    [
        # Powertools' recorded samples (kinesisStreamTumblingWindowEvent, dynamoStreamTumblingWindowEvent)
        (1607497475.0, 120, "2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z"),
        (1596128533, 300, "2020-07-30T17:00:00Z", "2020-07-30T17:05:00Z"),
        (1596128400.0, 300, "2020-07-30T17:00:00Z", "2020-07-30T17:05:00Z"),  # on a boundary: starts there
        (1596128699.999, 300, "2020-07-30T17:00:00Z", "2020-07-30T17:05:00Z"),  # just before the end
        (1596128700.0, 300, "2020-07-30T17:05:00Z", "2020-07-30T17:10:00Z"),  # the end opens the next
        (1596128533.5, 1, "2020-07-30T17:02:13Z", "2020-07-30T17:02:14Z"),
        (1596128533.5, 900, "2020-07-30T17:00:00Z", "2020-07-30T17:15:00Z"),
    ],
)
def test_window_containing(timestamp: float, seconds: int, start: str, end: str) -> None:
    window = Window.containing(timestamp, seconds)
    assert window.bounds() == {"start": start, "end": end}
    assert window.end - window.start == seconds
    assert str(window) == f"{start}/{end}"


@pytest.mark.parametrize(
    ("timestamp", "latest", "expected"),
    [
        (105.0, None, Window(100, 110)),
        (115.0, Window(100, 110), Window(110, 120)),  # forward
        (135.0, Window(100, 110), Window(130, 140)),  # forward past empty windows
        (109.0, Window(110, 120), Window(110, 120)),  # stepped back: joins the current window
        (112.0, Window(110, 120), Window(110, 120)),
    ],
)
def test_window_for_moves_only_forward(timestamp: float, latest: Window | None, expected: Window) -> None:
    assert window_for(timestamp, 10, latest) == expected


@pytest.mark.parametrize("seconds", [0, -1, 901])
def test_window_seconds_out_of_range(seconds: int) -> None:
    with pytest.raises(ValueError, match=f"TumblingWindowInSeconds must be between 1 and 900, got {seconds}"):
        check_window_seconds(seconds)
    with pytest.raises(ValueError, match="TumblingWindowInSeconds"):
        window_for(100.0, seconds, None)


@pytest.mark.parametrize("timestamp", [float("nan"), float("inf")])
def test_record_time_must_be_finite(timestamp: float) -> None:
    with pytest.raises(ValueError, match="record time must be finite epoch seconds"):
        Window.containing(timestamp, 60)


def test_format_utc() -> None:
    assert format_utc(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"state": {"sum": 3}}', WindowState(b'{"sum":3}')),
        (b'{"state": {}}', INITIAL_STATE),
        (
            b'{"state": {"a": [1, {"b": null}]}, "batchItemFailures": []}',
            WindowState(b'{"a":[1,{"b":null}]}'),
        ),
        (b"", StateProblem('the response must be an object with a "state", got null')),
        (None, StateProblem('the response must be an object with a "state", got null')),
        (b"not json", StateProblem("the response is not JSON")),
        (b"null", StateProblem('the response must be an object with a "state", got null')),
        (b"[1]", StateProblem('the response must be an object with a "state", got array')),
        (b'"ok"', StateProblem('the response must be an object with a "state", got string')),
        (b"{}", StateProblem('the response has no "state"')),
        (b'{"State": {}}', StateProblem('the response has no "state"')),
        (b'{"state": null}', StateProblem('the response\'s "state" must be an object, got null')),
        (b'{"state": [1]}', StateProblem('the response\'s "state" must be an object, got array')),
        (b'{"state": 3}', StateProblem('the response\'s "state" must be an object, got number')),
        (b'{"state": true}', StateProblem('the response\'s "state" must be an object, got boolean')),
    ],
)
def test_read_state(body: bytes | None, expected: WindowState | StateProblem) -> None:
    assert read_state(body) == expected


@pytest.mark.parametrize(
    ("size", "over"),
    [(8, False), (STATE_LIMIT_BYTES, False), (STATE_LIMIT_BYTES + 1, True)],
)
def test_state_limit_is_one_megabyte_of_json(size: int, over: bool) -> None:
    padding = "x" * (size - len(b'{"p":""}'))
    state = read_state(orjson.dumps({"state": {"p": padding}}))
    assert isinstance(state, WindowState)
    assert state.size_bytes == size
    assert state.over_limit is over


def fields(**overrides: Any) -> WindowEventFields:
    values: dict[str, Any] = {
        "window": Window(1607497440, 1607497560),
        "state": WindowState(b'{"1":282,"2":715}'),
        "shard_id": "shardId-000000000006",
        "stream_arn": STREAM_ARN,
    }
    return WindowEventFields(**(values | overrides))


@pytest.mark.parametrize(
    ("records_event", "extra", "expected_tail"),
    [
        (
            b'{"Records":[{"x":1}]}',
            {},
            {"isFinalInvokeForWindow": False, "isWindowTerminatedEarly": False},
        ),
        (
            NO_RECORDS_EVENT,
            {"final": True},
            {"isFinalInvokeForWindow": True, "isWindowTerminatedEarly": False},
        ),
        (
            NO_RECORDS_EVENT,
            {"final": True, "terminated_early": True},
            {"isFinalInvokeForWindow": True, "isWindowTerminatedEarly": True},
        ),
    ],
)
def test_window_event(records_event: bytes, extra: dict[str, Any], expected_tail: dict[str, bool]) -> None:
    event = orjson.loads(window_event(records_event, fields(**extra)))
    assert (
        event
        == orjson.loads(records_event)
        | {
            "window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"},
            "state": {"1": 282, "2": 715},
            "shardId": "shardId-000000000006",
            "eventSourceARN": STREAM_ARN,
        }
        | expected_tail
    )
    assert list(event) == [
        "Records",
        "window",
        "state",
        "shardId",
        "eventSourceARN",
        "isFinalInvokeForWindow",
        "isWindowTerminatedEarly",
    ]


@pytest.mark.parametrize("records_event", [b"", b"{}", b"[]", b'{"Records":[]} ', b"null"])
def test_window_event_needs_the_sources_records_object(records_event: bytes) -> None:
    with pytest.raises(ValueError, match="must be a non-empty JSON object"):
        window_event(records_event, fields())


def test_powertools_reads_a_kinesis_window_event() -> None:
    origin = KinesisShardOrigin(STREAM_ARN, "shardId-000000000006", "us-east-1", "arn:aws:iam::1:role/r")
    entry = kinesis_record(
        {
            "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
            "Data": b"Hello, this is a test.",
            "PartitionKey": "1",
            "ApproximateArrivalTimestamp": datetime.fromtimestamp(1607497475, UTC),
        },
        origin,
    )
    window = window_for(entry["kinesis"]["approximateArrivalTimestamp"], 120, None)
    payload = window_event(KinesisEventBuilder().build([entry]), fields(window=window))
    event = KinesisStreamEvent(orjson.loads(payload))
    assert event.window is not None
    assert (event.window.start, event.window.end) == ("2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z")
    assert event.state == {"1": 282, "2": 715}
    assert event.shard_id == "shardId-000000000006"
    assert event.event_source_arn == STREAM_ARN
    assert event.is_final_invoke_for_window is False
    assert event.is_window_terminated_early is False
    assert [r.kinesis.data_as_text() for r in event.records] == ["Hello, this is a test."]


def test_powertools_reads_a_final_dynamodb_window_event() -> None:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2020-07-30T00:00:00.000"
    entry = dynamodb_record(
        {
            "eventID": "1",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1596128533,
                "Keys": {"Id": {"N": "101"}},
                "SequenceNumber": "111",
                "SizeBytes": 26,
                "StreamViewType": "KEYS_ONLY",
            },
        },
        arn,
    )
    window = window_for(entry["dynamodb"]["ApproximateCreationDateTime"], 300, None)
    state = WindowState(b'{"1":"state1"}')
    common = {"window": window, "state": state, "shard_id": "shard123456789", "stream_arn": arn}
    batch = DynamoDBStreamEvent(
        orjson.loads(window_event(DynamoDBEventBuilder().build([entry]), fields(**common)))
    )
    assert [r.dynamodb.sequence_number for r in batch.records if r.dynamodb] == ["111"]
    final = DynamoDBStreamEvent(
        orjson.loads(window_event(NO_RECORDS_EVENT, fields(**common, final=True, terminated_early=True)))
    )
    assert final.window is not None
    assert (final.window.start, final.window.end) == ("2020-07-30T17:00:00Z", "2020-07-30T17:05:00Z")
    assert final.state == {"1": "state1"}
    assert list(final.records) == []
    assert final.is_final_invoke_for_window is True
    assert final.is_window_terminated_early is True
