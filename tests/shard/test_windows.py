"""A shard's batch loop with tumbling windows (WindowFraming) against fakes: a source of
Kinesis-shaped events (esm.events.kinesis) and a summing function that reads them with
Powertools' KinesisStreamEvent, as handlers do. The source and function write one timeline, so
the tests see invocations and checkpoints in order."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from shard_metrics import Count, metrics

from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.events.kinesis import KinesisEventBuilder, KinesisShardOrigin, event_record
from esm.shard.batching import BatchLimits
from esm.shard.failures import Backoff, Decision, FailurePolicy
from esm.shard.lane import LaneServices
from esm.shard.metrics import ShardMetrics
from esm.shard.shard import Shard
from esm.shard.sink import FailureSink
from esm.shard.state import ShardState
from esm.shard.tumbling import STATE_LIMIT_BYTES, Window, format_utc
from esm.shard.windows import WindowFraming, WindowSettings

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sums"
SHARD_ID = "shardId-000000000000"
ORIGIN = KinesisShardOrigin(STREAM_ARN, SHARD_ID, "us-east-1", "arn:aws:iam::123456789012:role/r")
WINDOW = 10  # seconds
FAST_BACKOFF = Backoff(0.001, 0.001)
FAST = FailurePolicy(function_error_backoff=FAST_BACKOFF, transient_backoff=FAST_BACKOFF)
ERROR = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", "boom"))


@dataclass(frozen=True)
class Rec:
    seq: int
    time: float  # arrival in the stream, epoch seconds
    padding: int = 0  # spaces after the value in the record's data

    @property
    def value(self) -> int:
        return self.seq  # what the function sums


def recs(*seq_and_time: tuple[int, float]) -> list[Rec]:
    return [Rec(seq, t) for seq, t in seq_and_time]


# Timeline entries: ("batch", window start, seqs, state), ("final", window start, state,
# terminated early), ("checkpoint", seq).
Entry = tuple[Any, ...]


class StreamSource:
    def __init__(self, timeline: list[Entry]) -> None:
        self.timeline = timeline
        self.owned = True
        self.filtered_out: set[int] = set()
        self.taken_bytes = 0

    def build_event(self, records: Sequence[Rec]) -> bytes:
        entries = [
            event_record(
                {
                    "SequenceNumber": str(r.seq),
                    "Data": str(r.value).encode() + b" " * r.padding,
                    "PartitionKey": "k",
                    "ApproximateArrivalTimestamp": datetime.fromtimestamp(r.time, UTC),
                },
                ORIGIN,
            )
            for r in records
        ]
        return KinesisEventBuilder().build(entries)

    def record_time(self, record: Rec) -> float:
        return record.time

    def select(self, records: list[Rec]) -> list[Rec]:
        return [r for r in records if r.seq not in self.filtered_out]

    def index_of(self, records: Sequence[Rec], identifier: object) -> int | None:
        return next((i for i, r in enumerate(records) if str(r.seq) == identifier), None)

    def unreadable_positions(self, records: Sequence[Rec]) -> list[int]:
        return []

    def lane_key(self, record: Rec) -> str | None:
        return None

    def order(self, record: Rec) -> int:
        return record.seq

    def describe_position(self, record: Rec) -> str:
        return f"sequence number {record.seq}"

    async def checkpoint_through(self, record: Rec) -> bool:
        if not self.owned:
            return False
        self.timeline.append(("checkpoint", record.seq))
        return True

    def taken(self, size_bytes: int) -> None:
        self.taken_bytes += size_bytes

    @property
    def checkpoints(self) -> list[int]:
        return [entry[1] for entry in self.timeline if entry[0] == "checkpoint"]


def start_of(window_start: str) -> int:
    return next(s for s in range(0, 1000, WINDOW) if format_utc(s) == window_start)


class SumFunction:
    """Sums record values into {"sum": n}; records whose seq is in `pad_on` make the state pass
    1 MB. `script` answers (in turn) replace its own; `hold` keeps a call in flight."""

    def __init__(self, timeline: list[Entry], script: Sequence[InvokeOutcome] = ()) -> None:
        self.timeline = timeline
        self.script = list(script)
        self.pad_on: set[int] = set()
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.events: list[KinesisStreamEvent] = []

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        event = KinesisStreamEvent(orjson.loads(payload))
        self.events.append(event)
        assert event.window is not None
        start = start_of(event.window.start)
        state = {k: v for k, v in event.state.items() if k != "pad"}  # keep the timeline readable
        if event.is_final_invoke_for_window:
            self.timeline.append(("final", start, state, event.is_window_terminated_early))
        else:
            seqs = tuple(int(r.kinesis.sequence_number) for r in event.records)
            self.timeline.append(("batch", start, seqs, state))
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.script:
            return self.script.pop(0)
        total = event.state.get("sum", 0) + sum(int(r.kinesis.data_as_text()) for r in event.records)
        new_state: dict[str, Any] = {"sum": total}
        if any(int(r.kinesis.sequence_number) in self.pad_on for r in event.records):
            new_state["pad"] = "x" * STATE_LIMIT_BYTES
        return InvokeOutcome.success(orjson.dumps({"state": new_state}))

    def batches(self) -> list[tuple[int, ...]]:
        return [entry[2] for entry in self.timeline if entry[0] == "batch"]


class Watermark:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[list[int], str]] = []

    async def send(
        self, records: Sequence[Rec], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        self.sent.append(([r.seq for r in records], decision.condition))
        return True


class OneLane:
    """A one-lane shard with windows, seen the way these tests look at it."""

    def __init__(self, shard: Shard[Rec]) -> None:
        self.shard = shard
        self.lane = shard.lanes[0]
        framing = self.lane.framing
        assert isinstance(framing, WindowFraming)
        self.framing: WindowFraming[Rec] = framing
        self.buffer = self.lane.buffer
        self.run = shard.run
        self.lease_lost = shard.lease_lost
        self.request_shutdown = shard.request_shutdown

    @property
    def state(self) -> ShardState:
        return self.shard.state

    @property
    def window(self) -> Window | None:
        return self.framing.window

    @property
    def windows_given_up(self) -> int:
        return self.framing.windows_given_up

    @property
    def reached_end(self) -> bool:
        return self.lane.reached_end

    @property
    def last_error(self) -> str | None:
        return self.lane.last_error

    @property
    def last_processing_result(self) -> str:
        return self.lane.last_processing_result


def windowed(
    source: StreamSource,
    function: SumFunction,
    limits: BatchLimits,
    policy: FailurePolicy,
    shard_metrics: ShardMetrics,
    window_seconds: int = WINDOW,
    watermark: Callable[[], float] = lambda: 0.0,
    report_batch_item_failures: bool = False,
    failure_sink: FailureSink[Rec] | None = None,
) -> OneLane:
    services: LaneServices[Rec] = LaneServices(
        format=source,
        invoker=function,
        policy=policy,
        metrics=shard_metrics,
        limits=limits,
        report_batch_item_failures=report_batch_item_failures,
        wall_clock=lambda: 500.0,
    )
    window = WindowSettings(window_seconds, SHARD_ID, STREAM_ARN, watermark, watermark_poll_seconds=0.002)
    shard = Shard(
        SHARD_ID,
        services,
        source,
        sink=failure_sink,
        taken=source.taken,
        framing=partial(WindowFraming, settings=window),
    )
    return OneLane(shard)


@dataclass
class Setup:
    shard: OneLane
    source: StreamSource
    function: SumFunction
    watermark: Watermark
    timeline: list[Entry]
    metrics: ShardMetrics


def setup(
    batch: int = 2,
    batching_window: float = 0.0,
    policy: FailurePolicy = FAST,
    script: Sequence[InvokeOutcome] = (),
    **options: Any,
) -> Setup:
    timeline: list[Entry] = []
    source, function, watermark = StreamSource(timeline), SumFunction(timeline, script), Watermark()
    shard_metrics = metrics()
    shard = windowed(
        source,
        function,
        BatchLimits(batch, batching_window),
        policy,
        shard_metrics,
        watermark=watermark,
        **options,
    )
    return Setup(shard, source, function, watermark, timeline, shard_metrics)


def feed(shard: OneLane, records: list[Rec]) -> None:
    shard.buffer.extend(records, [100] * len(records))


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while not condition():
            await asyncio.sleep(0.001)


async def stop(shard: OneLane, task: asyncio.Task[bool]) -> None:
    shard.request_shutdown()
    await asyncio.wait_for(task, 1)
    assert shard.state is ShardState.SHUT_DOWN


async def test_sums_three_windows_with_the_state_passed_along_and_checkpoints_after_each_final() -> None:
    s = setup(batch=2)
    feed(s.shard, recs(*((seq, 100 + (seq - 1) // 5 * WINDOW + seq % 5) for seq in range(1, 16))))
    task = asyncio.create_task(s.shard.run())
    await until(lambda: len(s.function.batches()) == 9)
    await asyncio.sleep(0.01)  # the watermark has not reached 130: the last window stays open
    assert s.source.checkpoints == [5, 10]
    assert s.shard.window == Window(120, 130)
    s.watermark.value = 130.0
    await until(lambda: s.source.checkpoints == [5, 10, 15])
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("batch", 100, (3, 4), {"sum": 3}),
        ("batch", 100, (5,), {"sum": 10}),
        ("final", 100, {"sum": 15}, False),
        ("checkpoint", 5),
        ("batch", 110, (6, 7), {}),
        ("batch", 110, (8, 9), {"sum": 13}),
        ("batch", 110, (10,), {"sum": 30}),
        ("final", 110, {"sum": 40}, False),
        ("checkpoint", 10),
        ("batch", 120, (11, 12), {}),
        ("batch", 120, (13, 14), {"sum": 23}),
        ("batch", 120, (15,), {"sum": 50}),
        ("final", 120, {"sum": 65}, False),
        ("checkpoint", 15),
    ]
    final = s.function.events[-1]
    assert final.window is not None
    assert (final.window.start, final.window.end) == (format_utc(120), format_utc(130))
    assert (final.shard_id, final.event_source_arn) == (SHARD_ID, STREAM_ARN)
    assert list(final.records) == []
    assert s.shard.window is None
    assert s.source.taken_bytes == 1500
    await stop(s.shard, task)


async def test_a_batch_is_cut_at_the_window_boundary() -> None:
    s = setup(batch=10)
    feed(s.shard, recs((1, 108.0), (2, 109.999), (3, 110.0), (4, 119.5), (5, 125.0)))
    task = asyncio.create_task(s.shard.run())
    await until(lambda: s.source.checkpoints == [2, 4])
    await until(lambda: len(s.function.batches()) == 3)
    assert s.function.batches() == [(1, 2), (3, 4), (5,)]
    await stop(s.shard, task)
    assert s.source.checkpoints == [2, 4]  # the window of 5 was left open


@pytest.mark.parametrize(
    "response",
    [b"null", b'{"sum": 3}', b'{"state": [3]}', b'{"state": null}', b"not json"],
    ids=["null", "no-state", "state-array", "state-null", "not-json"],
)
async def test_a_response_without_a_state_is_retried(response: bytes) -> None:
    s = setup(script=[InvokeOutcome.success(response)])
    feed(s.shard, recs((1, 101.0), (2, 102.0)))
    s.shard.buffer.close()
    task = asyncio.create_task(s.shard.run())
    await asyncio.wait_for(task, 2)
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("batch", 100, (1, 2), {}),  # the same records with the same state: nothing was counted twice
        ("final", 100, {"sum": 3}, False),
        ("checkpoint", 2),
    ]
    assert s.shard.reached_end


async def test_a_missing_state_is_reported_and_nothing_checkpointed_while_retrying() -> None:
    slow = FailurePolicy(function_error_backoff=Backoff(60.0, 60.0))
    s = setup(policy=slow, script=[InvokeOutcome.success(b'{"total": 3}')])
    feed(s.shard, recs((1, 101.0)))
    task = asyncio.create_task(s.shard.run())
    await until(lambda: s.shard.last_error is not None)
    assert s.shard.last_error == 'the whole batch failed: the response has no "state"'
    assert s.shard.last_processing_result == "PROBLEM: Function call failed"
    await stop(s.shard, task)  # no 60 s wait
    assert s.source.checkpoints == []


async def test_a_state_over_1_mb_ends_the_window_early_and_the_rest_starts_fresh() -> None:
    s = setup(batch=2)
    s.function.pad_on = {2}
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 103.0), (4, 104.0)))
    s.watermark.value = 110.0
    task = asyncio.create_task(s.shard.run())
    await until(lambda: s.source.checkpoints == [2, 4])
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("final", 100, {"sum": 3}, True),  # carries the oversize state
        ("checkpoint", 2),
        ("batch", 100, (3, 4), {}),  # same window bounds, fresh state
        ("final", 100, {"sum": 7}, False),
        ("checkpoint", 4),
    ]
    early_final = s.function.events[1]
    assert len(early_final.state["pad"]) == STATE_LIMIT_BYTES
    await stop(s.shard, task)


async def test_shard_end_closes_the_open_window() -> None:
    s = setup(batch=5)
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 111.0)))
    s.shard.buffer.close()
    await asyncio.wait_for(s.shard.run(), 2)  # returns by itself: the shard ended
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("final", 100, {"sum": 3}, False),
        ("checkpoint", 2),
        ("batch", 110, (3,), {}),
        ("final", 110, {"sum": 3}, False),  # the watermark never moved: shard end closed it
        ("checkpoint", 3),
    ]
    assert s.shard.reached_end
    assert s.shard.state is ShardState.SHUT_DOWN


@pytest.mark.parametrize("runner_noticed", [True, False])
async def test_lease_lost_with_a_batch_in_flight_checkpoints_nothing(runner_noticed: bool) -> None:
    s = setup(batch=5)
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 111.0), (4, 112.0)))  # 3 is held back from [1, 2]
    s.function.hold = asyncio.Event()
    task = asyncio.create_task(s.shard.run())
    await s.function.started.wait()
    s.source.owned = False
    if runner_noticed:
        s.shard.lease_lost()
        assert len(s.shard.buffer) == 0  # buffered records are the next owner's
    s.function.hold.set()  # without the runner, the source tells the shard when the call returns
    await asyncio.wait_for(task, 1)
    assert s.function.batches() == [(1, 2)]
    assert s.source.checkpoints == []
    assert s.shard.state is ShardState.SHUT_DOWN
    assert not s.shard.reached_end
    abandoned = s.metrics.records_abandoned
    assert isinstance(abandoned, Count) and abandoned.value == 4  # in flight, held and buffered


async def test_lease_lost_while_the_window_is_open_checkpoints_nothing() -> None:
    s = setup(batch=2)
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 103.0)))
    task = asyncio.create_task(s.shard.run())
    await until(lambda: len(s.function.batches()) == 2)
    s.source.owned = False
    s.shard.lease_lost()
    s.watermark.value = 200.0  # the window would be complete now
    await asyncio.wait_for(task, 1)
    assert [entry[0] for entry in s.timeline] == ["batch", "batch"]  # no final invocation


async def test_shutdown_finishes_the_invocation_in_flight_and_leaves_the_window_open() -> None:
    s = setup(batch=2)
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 103.0)))
    s.watermark.value = 200.0
    s.function.hold = asyncio.Event()
    task = asyncio.create_task(s.shard.run())
    await s.function.started.wait()
    s.shard.request_shutdown()
    s.function.hold.set()
    await asyncio.wait_for(task, 1)
    assert s.timeline == [("batch", 100, (1, 2), {})]
    assert s.shard.state is ShardState.SHUT_DOWN


async def test_a_window_of_filtered_records_is_checkpointed_without_an_invocation() -> None:
    s = setup(batch=5)
    s.source.filtered_out = {1, 2, 3, 6}
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 103.0), (4, 111.0), (5, 112.0), (6, 113.0)))
    s.watermark.value = 120.0
    task = asyncio.create_task(s.shard.run())
    await until(lambda: s.source.checkpoints == [3, 6])
    assert s.timeline == [
        ("checkpoint", 3),
        ("batch", 110, (4, 5), {}),
        ("final", 110, {"sum": 9}, False),
        ("checkpoint", 6),  # past the trailing filtered record
    ]
    await stop(s.shard, task)


async def test_the_watermark_sends_what_is_buffered_at_once_then_closes_the_window() -> None:
    s = setup(batch=3, batching_window=60.0)
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 103.0)))  # BatchSize reached
    task = asyncio.create_task(s.shard.run())
    await until(lambda: len(s.function.batches()) == 1)
    feed(s.shard, recs((4, 104.0)))  # would wait for the 60 s batching window
    await asyncio.sleep(0.01)
    assert len(s.function.batches()) == 1
    s.watermark.value = 115.0
    await until(lambda: s.source.checkpoints == [4])
    assert s.timeline[1:] == [
        ("batch", 100, (4,), {"sum": 6}),
        ("final", 100, {"sum": 10}, False),
        ("checkpoint", 4),
    ]
    await stop(s.shard, task)


async def test_records_given_up_go_to_the_sink_and_the_window_keeps_its_last_good_state() -> None:
    policy = FailurePolicy(maximum_retry_attempts=0, function_error_backoff=FAST_BACKOFF)
    sink = RecordingSink()
    s = setup(batch=2, policy=policy, failure_sink=sink)
    feed(s.shard, recs((1, 101.0), (2, 102.0)))
    task = asyncio.create_task(s.shard.run())
    await until(lambda: len(s.function.batches()) == 1)
    s.function.script = [ERROR]
    feed(s.shard, recs((3, 103.0), (4, 104.0), (5, 111.0)))
    s.shard.buffer.close()
    await asyncio.wait_for(task, 2)
    assert sink.sent == [([3, 4], "RetryAttemptsExhausted")]
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("batch", 100, (3, 4), {"sum": 3}),
        ("final", 100, {"sum": 3}, False),
        ("checkpoint", 4),  # past the records given up
        ("batch", 110, (5,), {}),
        ("final", 110, {"sum": 5}, False),
        ("checkpoint", 5),
    ]


async def test_a_batch_cut_by_size_stays_in_its_window() -> None:
    s = setup(batch=10)
    s.shard.buffer.extend(recs((1, 101.0), (2, 102.0)), [4 * 1024 * 1024] * 2)  # 8 MB estimated
    s.shard.buffer.close()
    await asyncio.wait_for(s.shard.run(), 2)
    assert s.timeline == [
        ("batch", 100, (1,), {}),
        ("batch", 100, (2,), {"sum": 1}),
        ("final", 100, {"sum": 3}, False),
        ("checkpoint", 2),
    ]


async def test_a_partial_batch_response_keeps_the_state_of_the_records_before_the_failed_one() -> None:
    partial = InvokeOutcome.success(
        orjson.dumps({"state": {"sum": 1}, "batchItemFailures": [{"itemIdentifier": "2"}]})
    )
    s = setup(batch=3, script=[partial], report_batch_item_failures=True)
    feed(s.shard, recs((1, 101.0), (2, 102.0), (3, 103.0)))
    s.shard.buffer.close()
    await asyncio.wait_for(s.shard.run(), 2)
    assert s.timeline == [
        ("batch", 100, (1, 2, 3), {}),
        ("batch", 100, (2, 3), {"sum": 1}),
        ("final", 100, {"sum": 6}, False),
        ("checkpoint", 3),
    ]


async def test_a_batch_failure_response_drops_the_state_it_carries() -> None:
    unreadable = InvokeOutcome.success(
        orjson.dumps({"state": {"sum": 99}, "batchItemFailures": [{"id": "2"}]})
    )
    s = setup(batch=3, script=[unreadable], report_batch_item_failures=True)
    feed(s.shard, recs((1, 101.0), (2, 102.0)))
    s.shard.buffer.close()
    await asyncio.wait_for(s.shard.run(), 2)
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("batch", 100, (1, 2), {}),  # the whole batch again, from the last good state
        ("final", 100, {"sum": 3}, False),
        ("checkpoint", 2),
    ]


async def test_a_final_invocation_given_up_still_checkpoints_the_window() -> None:
    policy = FailurePolicy(maximum_retry_attempts=1, function_error_backoff=FAST_BACKOFF)
    s = setup(batch=2, policy=policy)
    feed(s.shard, recs((1, 101.0), (2, 102.0)))
    task = asyncio.create_task(s.shard.run())
    await until(lambda: len(s.function.batches()) == 1)
    s.function.script = [ERROR, ERROR]
    s.shard.buffer.close()
    await asyncio.wait_for(task, 2)
    assert s.timeline == [
        ("batch", 100, (1, 2), {}),
        ("final", 100, {"sum": 3}, False),
        ("final", 100, {"sum": 3}, False),  # one retry, then given up
        ("checkpoint", 2),
    ]
    assert s.shard.windows_given_up == 1
    assert s.shard.reached_end


async def test_an_oversize_event_is_halved_and_the_halves_carry_the_state() -> None:
    s = setup(batch=3)
    three_mb = 3 * 1024 * 1024  # 4 MB of base64 each: two pass the 6 MB invoke limit
    feed(s.shard, [Rec(1, 101.0, three_mb), Rec(2, 102.0, three_mb)])
    s.shard.buffer.close()
    await asyncio.wait_for(s.shard.run(), 2)
    assert s.timeline == [
        ("batch", 100, (1,), {}),
        ("batch", 100, (2,), {"sum": 1}),
        ("final", 100, {"sum": 3}, False),
        ("checkpoint", 2),
    ]


def test_bisect_on_function_error_is_refused() -> None:
    with pytest.raises(
        ValueError, match="BisectBatchOnFunctionError is not applied with TumblingWindowInSeconds"
    ):
        setup(policy=FailurePolicy(bisect_on_function_error=True))


def test_window_seconds_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="TumblingWindowInSeconds must be between 1 and 900, got 0"):
        windowed(StreamSource([]), SumFunction([]), BatchLimits(1, 0.0), FAST, metrics(), window_seconds=0)
