"""A shard's batch loop (one lane) against fake collaborators (the source and invoker are pure
fakes here; the integration tests drive the real ones)."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace

import orjson
import pytest
from shard_metrics import counting_metrics

from esm.dispatch.outcomes import FunctionError, InvokeOutcome, OutcomeKind
from esm.shard.batching import BatchLimits
from esm.shard.failures import Backoff, Decision, FailurePolicy
from esm.shard.shard import Shard
from esm.shard.state import ShardState

from .fakes import FAST, FakeSource, ScriptedInvoker, feed, shard_of


def consumer(invoker: ScriptedInvoker, source: FakeSource, batch: int = 2) -> Shard[int]:
    return shard_of(source, invoker, batch=batch)


async def test_batches_in_order_and_checkpoints_after_each_success() -> None:
    source, invoker = FakeSource(), ScriptedInvoker()
    shard = consumer(invoker, source)
    feed(shard, [1, 2, 3, 4, 5], size=10)
    task = asyncio.create_task(shard.run())
    while source.checkpoints[-1:] != [5]:
        await asyncio.sleep(0.001)
    assert invoker.payloads == [b"1,2", b"3,4", b"5"]
    assert source.checkpoints == [2, 4, 5]
    assert source.taken_bytes == 50
    shard.request_shutdown()
    await asyncio.wait_for(task, 1)
    assert shard.state is ShardState.SHUT_DOWN


async def test_function_error_retries_the_same_batch_without_checkpointing() -> None:
    error = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", "boom"))
    down = InvokeOutcome(OutcomeKind.UNREACHABLE, detail="down")
    source, invoker = FakeSource(), ScriptedInvoker([error, down, error])
    shard = consumer(invoker, source)
    feed(shard, [1, 2])
    task = asyncio.create_task(shard.run())
    while not source.checkpoints:
        await asyncio.sleep(0.001)
    assert invoker.payloads == [b"1,2"] * 4
    assert source.checkpoints == [2]
    shard.request_shutdown()
    await asyncio.wait_for(task, 1)


async def test_lease_lost_while_in_flight_drops_the_result() -> None:
    hold = asyncio.Event()
    source, invoker = FakeSource(), ScriptedInvoker(hold=hold)
    shard = consumer(invoker, source)
    feed(shard, [1, 2, 3])
    task = asyncio.create_task(shard.run())
    await invoker.started.wait()
    source.owned = False
    shard.lease_lost()
    assert shard.status_fields()["buffered"] == 0  # buffered records are the next owner's
    hold.set()
    await asyncio.wait_for(task, 1)
    assert source.checkpoints == []
    assert shard.state is ShardState.SHUT_DOWN


async def test_shutdown_finishes_the_batch_in_flight_and_leaves_the_rest() -> None:
    hold = asyncio.Event()
    source, invoker = FakeSource(), ScriptedInvoker(hold=hold)
    shard = consumer(invoker, source)
    feed(shard, [1, 2, 3])
    task = asyncio.create_task(shard.run())
    await invoker.started.wait()
    shard.request_shutdown()
    hold.set()
    await asyncio.wait_for(task, 1)
    assert source.checkpoints == [2]
    assert invoker.payloads == [b"1,2"]


async def test_a_cancelled_consumer_ends_shut_down_without_checkpointing() -> None:
    """Cancelled past the shutdown grace, with a batch in flight: an ordinary end, not an error."""
    source, invoker = FakeSource(), ScriptedInvoker(hold=asyncio.Event())
    shard = consumer(invoker, source)
    feed(shard, [1, 2, 3])
    task = asyncio.create_task(shard.run())
    await invoker.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert shard.state is ShardState.SHUT_DOWN
    assert source.checkpoints == []


async def test_shutdown_abandons_a_batch_waiting_to_retry() -> None:
    slow = FailurePolicy(function_error_backoff=Backoff(60.0, 60.0), transient_backoff=Backoff(60.0, 60.0))
    error = InvokeOutcome(OutcomeKind.FUNCTION_ERROR, error=FunctionError("E", "x"))
    source, invoker = FakeSource(), ScriptedInvoker([error])
    shard = shard_of(source, invoker, batch=5, policy=slow)
    feed(shard, [1])
    task = asyncio.create_task(shard.run())
    while shard.lanes[0].last_error is None:
        await asyncio.sleep(0.001)
    assert shard.lanes[0].last_error == "E: x"
    shard.request_shutdown()
    await asyncio.wait_for(task, 1)  # no 60 s wait
    assert source.checkpoints == []


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[list[int], str, int]] = []

    async def send(
        self, records: Sequence[int], decision: Decision, last_outcome: InvokeOutcome | None
    ) -> bool:
        self.sent.append((list(records), decision.condition, decision.invoke_count))
        return True


class PoisonInvoker:
    """Fails any batch holding the poison record; optionally answers with a partial response
    naming it (as a ReportBatchItemFailures handler does)."""

    def __init__(self, poison: int, partial: bool = False) -> None:
        self.poison = poison
        self.partial = partial
        self.batches: list[list[int]] = []

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        batch = [int(x) for x in payload.decode().split(",")]
        self.batches.append(batch)
        if self.poison not in batch:
            return InvokeOutcome.success(b"null")
        if self.partial:
            return InvokeOutcome.success(
                orjson.dumps({"batchItemFailures": [{"itemIdentifier": self.poison}]})
            )
        return InvokeOutcome(
            OutcomeKind.FUNCTION_ERROR, error=FunctionError("ValueError", f"poison {self.poison}")
        )


async def run_until_checkpointed(shard: Shard[int], source: FakeSource, last: int) -> None:
    task = asyncio.create_task(shard.run())
    while source.checkpoints[-1:] != [last]:
        await asyncio.sleep(0.001)
    shard.request_shutdown()
    await asyncio.wait_for(task, 1)


async def test_bisect_sends_only_the_poison_record_to_the_sink() -> None:
    policy = FailurePolicy(
        maximum_retry_attempts=1,
        bisect_on_function_error=True,
        function_error_backoff=Backoff(0.001, 0.001),
        transient_backoff=Backoff(0.001, 0.001),
    )
    source, invoker, sink = FakeSource(), PoisonInvoker(poison=5), RecordingSink()
    shard = shard_of(source, invoker, batch=8, policy=policy, sink=sink)
    feed(shard, list(range(8)))
    await run_until_checkpointed(shard, source, 7)
    assert sink.sent == [([5], "RetryAttemptsExhausted", 5)]  # 3 bisect levels + 2 invocations of [5]
    assert source.checkpoints == sorted(source.checkpoints)  # in order
    delivered = [r for batch in invoker.batches if 5 not in batch for r in batch]
    assert sorted(delivered) == [0, 1, 2, 3, 4, 6, 7]


async def test_partial_response_redelivers_from_the_failed_record_only() -> None:
    policy = FailurePolicy(
        maximum_retry_attempts=2,
        function_error_backoff=Backoff(0.001, 0.001),
        transient_backoff=Backoff(0.001, 0.001),
    )
    source, invoker, sink = FakeSource(), PoisonInvoker(poison=3, partial=True), RecordingSink()
    shard = shard_of(source, invoker, batch=6, policy=policy, sink=sink, report_batch_item_failures=True)
    feed(shard, list(range(6)))
    await run_until_checkpointed(shard, source, 5)
    # the head [0, 1, 2] is checkpointed once and never re-driven; [3, 4, 5] is retried twice
    assert invoker.batches == [[0, 1, 2, 3, 4, 5], [3, 4, 5], [3, 4, 5]]
    assert source.checkpoints == [2, 5]
    assert sink.sent == [([3, 4, 5], "RetryAttemptsExhausted", 3)]


async def test_records_past_the_age_limit_are_not_invoked() -> None:
    policy = FailurePolicy(maximum_record_age_seconds=60)
    source, invoker, sink = FakeSource(), ScriptedInvoker(), RecordingSink()
    source.record_time = lambda record: time.time() - 3600  # type: ignore[method-assign]
    shard = shard_of(source, invoker, batch=5, policy=policy, sink=sink)
    feed(shard, [1, 2])
    await run_until_checkpointed(shard, source, 2)
    assert invoker.payloads == []
    assert sink.sent == [([1, 2], "RecordAgeExceeded", 0)]


async def test_filtered_records_are_checkpointed_not_invoked() -> None:
    source, invoker = FakeSource(), ScriptedInvoker()
    source.filtered_out = {2, 4, 5}
    shard = consumer(invoker, source, batch=5)
    feed(shard, [1, 2, 3, 4, 5, 6])
    await run_until_checkpointed(shard, source, 6)
    assert invoker.payloads == [b"1,3", b"6"]
    assert source.checkpoints == [3, 5, 6]  # the trailing filtered records 4, 5 are passed too


async def test_a_record_over_the_payload_limit_goes_to_the_sink_alone() -> None:
    source, invoker, sink = FakeSource(), ScriptedInvoker(), RecordingSink()
    source.build_event = lambda records: b"x" * (7 * 1024 * 1024) if 9 in records else b"ok"  # type: ignore[method-assign]
    shard = shard_of(source, invoker, batch=5, policy=FAST, sink=sink)
    feed(shard, [8, 9, 10])
    await run_until_checkpointed(shard, source, 10)
    assert sink.sent == [([9], "MaximumPayloadSizeExceeded", 0)]
    assert invoker.payloads == [b"ok", b"ok"]  # [8] and [10], after halving the oversize batch


async def test_new_settings_apply_from_the_next_batch_and_the_one_in_flight_keeps_its_own() -> None:
    hold = asyncio.Event()
    source, invoker = FakeSource(), ScriptedInvoker(hold=hold)
    shard = shard_of(source, invoker, batch=5)
    feed(shard, list(range(1, 12)))
    task = asyncio.create_task(shard.run())
    await invoker.started.wait()  # [1..5] is in flight under BatchSize 5
    smaller = replace(shard.lanes[0].services, limits=BatchLimits(2, 0.0), report_batch_item_failures=True)
    shard.reconfigure(smaller, None)
    hold.set()
    async with asyncio.timeout(5):
        while source.checkpoints[-1:] != [11]:
            await asyncio.sleep(0.001)
    shard.request_shutdown()
    await task
    assert invoker.payloads == [b"1,2,3,4,5", b"6,7", b"8,9", b"10,11"]


@pytest.mark.parametrize(
    ("poison", "partial", "delivered", "to_destination"),
    [
        (None, False, 6, 0),  # all succeed
        (2, False, 4, 2),  # [0, 1] succeed; the batch [2, 3] fails until given up; [4, 5] succeed
        (3, True, 5, 1),  # a partial response names 3: [2] succeeds, [3] is given up
    ],
)
async def test_delivered_counts_only_records_the_function_succeeded_with(
    poison: int | None, partial: bool, delivered: int, to_destination: int
) -> None:
    """esm_records_delivered_total must not count records given up to the destination
    (issue 10, item 5): it read 5 with no successful invocation at all."""
    policy = FailurePolicy(
        maximum_retry_attempts=1,
        function_error_backoff=Backoff(0.001, 0.001),
        transient_backoff=Backoff(0.001, 0.001),
    )
    shard_metrics, counts = counting_metrics()
    source = FakeSource()
    shard = shard_of(
        source,
        PoisonInvoker(poison=-1 if poison is None else poison, partial=partial),
        batch=2,
        policy=policy,
        sink=RecordingSink(),
        report_batch_item_failures=partial,
        shard_metrics=shard_metrics,
    )
    feed(shard, list(range(6)))
    await run_until_checkpointed(shard, source, 5)
    assert counts["records_delivered"].value == delivered
    assert counts["records_to_destination"].value == to_destination


async def test_an_unreadable_record_goes_to_the_sink_alone_and_uninvoked() -> None:
    """A record the reader could not decode affects only itself (issue 10, item 2)."""
    source, invoker, sink = FakeSource(), PoisonInvoker(poison=-1), RecordingSink()
    source.unreadable = {2}
    shard_metrics, counts = counting_metrics()
    shard = shard_of(source, invoker, batch=6, sink=sink, shard_metrics=shard_metrics)
    feed(shard, list(range(6)))
    await run_until_checkpointed(shard, source, 5)
    assert invoker.batches == [[0, 1], [3, 4, 5]]
    assert sink.sent == [([2], "RecordUnreadable", 0)]
    assert source.checkpoints[-1] == 5 and 2 in source.checkpoints
    assert (counts["records_delivered"].value, counts["records_to_destination"].value) == (5, 1)
