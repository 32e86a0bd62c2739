"""Tumbling windows (TumblingWindowInSeconds) for Kinesis and DynamoDB Streams: the pure part.

A record belongs to the window [floor(t / W) * W, that + W), t its arrival time in the stream
(Kinesis approximateArrivalTimestamp, DynamoDB ApproximateCreationDateTime; epoch seconds) and
W the window length (1-900 s). Arrival times are approximate and may step back a little across
a boundary; a record is never put in a window that already closed (`window_for`): it joins the
current one.

Each invocation carries the state the previous invocation of its window returned, and the
function must answer `{"state": {...}}` (`read_state`): anything else is a function failure. A
state of more than 1 MB (its JSON bytes) ends the window early. The event is the source's
`{"Records": [...]}` with the window fields spliced in after them (`window_event`):

    {"Records": [...], "window": {"start": "2020-07-30T17:00:00Z", "end": "2020-07-30T17:05:00Z"},
     "state": {...}, "shardId": "...", "eventSourceARN": "...",
     "isFinalInvokeForWindow": false, "isWindowTerminatedEarly": false}

Splicing bytes instead of parsing and re-serialising the records keeps a 6 MB batch one copy;
the state travels as the JSON bytes the function returned (re-serialised once, compactly).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson

MIN_WINDOW_SECONDS = 1
MAX_WINDOW_SECONDS = 900
# Lambda ends a window early when the state passes 1 MB.
STATE_LIMIT_BYTES = 1024 * 1024
# The first invocation of a window (and of the rest of an early-terminated one) starts empty.
EMPTY_STATE = b"{}"
# The final invocation of a window carries no records.
NO_RECORDS_EVENT = b'{"Records":[]}'

_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def check_window_seconds(seconds: int) -> int:
    """The window length, or ValueError naming TumblingWindowInSeconds when out of range."""
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(
            f"TumblingWindowInSeconds must be between {MIN_WINDOW_SECONDS} and {MAX_WINDOW_SECONDS}, "
            f"got {seconds}"
        )
    return seconds


def format_utc(epoch_seconds: int) -> str:
    """`2020-07-30T17:00:00Z`: the format of the event's window bounds."""
    return time.strftime(_ISO_UTC, time.gmtime(epoch_seconds))


@dataclass(frozen=True, order=True)
class Window:
    """[start, end) in whole epoch seconds."""

    start: int
    end: int

    @classmethod
    def containing(cls, timestamp: float, seconds: int) -> Window:
        if not math.isfinite(timestamp):
            raise ValueError(f"record time must be finite epoch seconds, got {timestamp!r}")
        start = math.floor(timestamp / seconds) * seconds
        return cls(start, start + seconds)

    def bounds(self) -> dict[str, str]:
        """The event's `window` field."""
        return {"start": format_utc(self.start), "end": format_utc(self.end)}

    def __str__(self) -> str:
        return f"{format_utc(self.start)}/{format_utc(self.end)}"


def window_for(timestamp: float, seconds: int, latest: Window | None) -> Window:
    """The window of a record that arrived at `timestamp`, never earlier than `latest` (the
    window of the record before it): windows only move forward along a shard."""
    window = Window.containing(timestamp, check_window_seconds(seconds))
    return window if latest is None or window > latest else latest


@dataclass(frozen=True)
class WindowState:
    """A state the function returned, as compact JSON bytes."""

    json: bytes

    @property
    def size_bytes(self) -> int:
        return len(self.json)

    @property
    def over_limit(self) -> bool:
        """Past 1 MB: the window ends early (its next invocation is the final one)."""
        return self.size_bytes > STATE_LIMIT_BYTES


INITIAL_STATE = WindowState(EMPTY_STATE)


@dataclass(frozen=True)
class StateProblem:
    """Why a response carries no usable state (the invocation counts as a function failure)."""

    reason: str


def read_state(body: bytes | None) -> WindowState | StateProblem:
    """The `state` object of a windowed invocation's response, or why there is none."""
    try:
        response: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return StateProblem("the response is not JSON")
    if not isinstance(response, dict):
        return StateProblem(f'the response must be an object with a "state", got {_json_type(response)}')
    if "state" not in response:
        return StateProblem('the response has no "state"')
    state = response["state"]
    if not isinstance(state, dict):
        return StateProblem(f'the response\'s "state" must be an object, got {_json_type(state)}')
    return WindowState(orjson.dumps(state))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@dataclass(frozen=True)
class WindowEventFields:
    """What a windowed event adds to the source's `{"Records": [...]}`."""

    window: Window
    state: WindowState
    shard_id: str
    stream_arn: str
    final: bool = False
    terminated_early: bool = False


def window_event(records_event: bytes, fields: WindowEventFields) -> bytes:
    """The source's records event (a JSON object holding "Records") with the window fields
    appended to it."""
    if not (records_event.startswith(b"{") and records_event.endswith(b"}")) or records_event == b"{}":
        raise ValueError(
            f"a windowed event extends the source's records event, which must be a non-empty JSON "
            f"object; got {records_event[:40]!r}"
        )
    tail = orjson.dumps(
        {
            "window": fields.window.bounds(),
            "state": orjson.Fragment(fields.state.json),
            "shardId": fields.shard_id,
            "eventSourceARN": fields.stream_arn,
            "isFinalInvokeForWindow": fields.final,
            "isWindowTerminatedEarly": fields.terminated_early,
        }
    )
    return records_event[:-1] + b"," + tail[1:]
