"""The Kafka group readers (kafka-python and confluent-kafka) against a real broker (Tansu):
delivery, fenced commits, flow control, hand-over between members."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer
from kafka.errors import KafkaError

from esm.embedded.topics import OutgoingRecord, committed_offsets, produce
from esm.events.kafka import estimated_entry_size
from esm.ownership.kafka_assignment import PartitionAssignment
from esm.sources.kafka import KafkaGroupReader, ReaderSettings, retry_backoff_ms
from esm.sources.kafka_confluent import ConfluentGroupReader
from esm.sources.kafka_group import ClientError, GroupReader

from .kafka_events import Collector

ReaderClass = type[GroupReader[Any]]


@pytest.fixture(params=[KafkaGroupReader, ConfluentGroupReader], ids=["kafka-python", "confluent-kafka"])
def reader_class(request: pytest.FixtureRequest) -> ReaderClass:
    cls: ReaderClass = request.param
    return cls


FAST_GROUP = {"session_timeout_ms": 1500, "heartbeat_interval_ms": 300, "fetch_max_wait_ms": 20}


def settings(bootstrap: str, topic: str, group: str, **overrides: Any) -> ReaderSettings:
    kwargs = dict(
        FAST_GROUP,
        bootstrap_servers=[bootstrap],
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    return ReaderSettings(topic=topic, consumer_kwargs=kwargs, start="earliest", **overrides)


def started(reader_class: ReaderClass, reader_settings: ReaderSettings) -> tuple[GroupReader[Any], Collector]:
    """A running reader on this test's event loop, and what it tells the loop."""
    events = Collector()
    reader = reader_class(reader_settings, events, asyncio.get_running_loop(), estimated_entry_size)
    reader.start()
    return reader, events


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def records(n: int, partitions: int = 2) -> list[OutgoingRecord]:
    return [OutgoingRecord(value=f"v{i}".encode(), key=None, partition=i % partitions) for i in range(n)]


async def test_delivers_in_offset_order_and_commits_only_completed(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    topic = new_topic(partitions=2)
    produce(kafka_broker, topic, records(200))
    events = Collector()
    reader = reader_class(
        settings(kafka_broker, topic, f"g-{topic}"), events, asyncio.get_running_loop(), estimated_entry_size
    )
    reader.start()
    try:
        await until(lambda: events.total() == 200)
        for partition_records in events.records.values():
            offsets = [r["offset"] for r in partition_records]
            assert offsets == list(range(100))
        by_partition = {a.tp.partition: a for a in events.assigned}
        by_partition[0].complete(40)  # the function finished offsets 0..39 of partition 0
        await until(lambda: by_partition[0].committed == 40)
        assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {0: 40}
    finally:
        reader.stop_fetching()
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)


async def test_revoked_assignment_never_commits(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, records(10, partitions=1))
    events = Collector()
    reader = reader_class(
        settings(kafka_broker, topic, f"g-{topic}"), events, asyncio.get_running_loop(), estimated_entry_size
    )
    reader.start()
    try:
        await until(lambda: events.total() == 10)
        assignment = events.assigned[0]
        assignment.revoke()  # as the rebalance listener does
        assert assignment.complete(10) is False
        await asyncio.sleep(0.3)  # several reader turns
    finally:
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)
    assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {}


async def test_paused_partition_resumes_after_its_buffer_drains(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    """kafka-python 3.0.12 can leave a resumed partition stuck (data parked while it was paused is
    never restored once another partition's records have passed through); the reader must not."""
    topic = new_topic(partitions=2)
    produce(
        kafka_broker,
        topic,
        [OutgoingRecord(value=b"x" * 1000, key=None, partition=i % 2) for i in range(6000)],
    )
    events = Collector()
    tight = settings(
        kafka_broker,
        topic,
        f"g-{topic}",
        buffer_high_bytes=50_000,
        buffer_low_bytes=20_000,
        max_poll_records=100,
    )
    reader = reader_class(tight, events, asyncio.get_running_loop(), estimated_entry_size)
    reader.start()
    try:
        await until(lambda: len(events.assigned) == 2)
        # Bounded by time, not turns: each pause costs librdkafka a fresh fetch.
        deadline = asyncio.get_running_loop().time() + 40
        turn = 0
        while events.total() < 6000 and asyncio.get_running_loop().time() < deadline:
            turn += 1
            await asyncio.sleep(0.02)
            for assignment in events.assigned:
                assert assignment.buffered_bytes < 50_000 + 100 * 1300, "flow control did not pause"
                # Partition 1 drains at once; partition 0 only every tenth turn, so it is paused
                # while partition 1's records keep passing through the consumer.
                if assignment.tp.partition == 1 or turn % 10 == 0:
                    assignment.add_buffered(-assignment.buffered_bytes)
        assert {p: len(r) for p, r in events.records.items()} == {0: 3000, 1: 3000}
        assert [r["offset"] for r in events.records[0]] == list(range(3000))
    finally:
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)


async def test_each_new_ownership_starts_at_the_committed_offset(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    """A partition revoked and assigned back to the same member must be re-read from the group's
    committed offset: kafka-python keeps its old fetch position, past records the engine dropped."""
    topic = new_topic(partitions=4)
    produce(kafka_broker, topic, records(400, partitions=4))
    loop = asyncio.get_running_loop()
    first, second = Collector(), Collector()
    reader_a = reader_class(settings(kafka_broker, topic, f"g-{topic}"), first, loop, estimated_entry_size)
    reader_b = reader_class(settings(kafka_broker, topic, f"g-{topic}"), second, loop, estimated_entry_size)
    reader_a.start()
    try:
        await until(lambda: first.total() == 400)
        for assignment in first.assigned:
            assignment.complete(10)  # the function finished offsets 0..9 of every partition
        await until(lambda: all(a.committed == 10 for a in first.assigned))
        reader_b.start()
        await until(lambda: len(first.revoked) == 4 and len(second.assigned) > 0)
        await loop.run_in_executor(None, reader_b.close, 20.0)  # leaves the group
        await until(lambda: len([a for a in first.assigned if a.active]) == 4)
        await until(lambda: all(len(r) >= 100 + 90 for r in first.records.values()))
    finally:
        await loop.run_in_executor(None, reader_a.close, 20.0)
    for partition_records in first.records.values():
        # The last epoch read the partition again from its commit, in order, with nothing skipped.
        assert [r["offset"] for r in partition_records[-90:]] == list(range(10, 100))


async def test_restart_reads_a_partition_again_from_its_commit(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, records(100, partitions=1))
    events = Collector()
    reader = reader_class(
        settings(kafka_broker, topic, f"g-{topic}"), events, asyncio.get_running_loop(), estimated_entry_size
    )
    reader.start()
    try:
        await until(lambda: events.total() == 100)
        [first] = events.assigned
        first.complete(40)
        await until(lambda: first.committed == 40)
        reader.restart(first.tp)
        await until(lambda: len(events.assigned) == 2 and events.total() == 160)
        second = events.assigned[1]
        assert events.revoked == [first] and not first.active
        assert second.active and second.epoch > first.epoch and second.committed == 40
    finally:
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)
    assert [r["offset"] for r in events.records[0][100:]] == list(range(40, 100))


async def test_lag_counts_from_where_reading_started_while_nothing_is_committed(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    """A first batch that never completes (a stuck function) must show as lag, though the group
    has no committed offset to count from (issue 10, item 3)."""
    topic = new_topic(partitions=2)
    produce(kafka_broker, topic, records(30, partitions=2))
    events = Collector()
    reader = reader_class(
        settings(kafka_broker, topic, f"g-{topic}", lag_interval_seconds=0.05),
        events,
        asyncio.get_running_loop(),
        estimated_entry_size,
    )
    reader.start()
    try:
        await until(lambda: events.total() == 30)
        await until(lambda: events.lag == 30)
        by_partition = {a.tp.partition: a for a in events.assigned}
        by_partition[0].complete(5)  # offsets 0..4 of partition 0 done
        await until(lambda: events.lag == 25)
    finally:
        reader.stop_fetching()
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
async def test_a_revoke_commits_what_completed_and_cooperative_keeps_unmoved_partitions(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass, strategy: str
) -> None:
    topic = new_topic(partitions=4)
    produce(kafka_broker, topic, records(200, partitions=4))
    loop = asyncio.get_running_loop()
    first, second = Collector(), Collector()
    # No periodic commit within the test: only the revoke can commit.
    quiet = dict(partition_assignment_strategy=(strategy,))

    def member(events: Collector) -> GroupReader[Any]:
        base = settings(kafka_broker, topic, f"g-{topic}", commit_interval_seconds=3600.0)
        kwargs = {**base.consumer_kwargs, **quiet}
        return reader_class(
            ReaderSettings(
                topic=topic, consumer_kwargs=kwargs, start="earliest", commit_interval_seconds=3600.0
            ),
            events,
            loop,
            estimated_entry_size,
        )

    reader_a, reader_b = member(first), member(second)
    reader_a.start()
    try:
        await until(lambda: first.total() == 200)
        assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {}
        for assignment in first.assigned:
            assignment.complete(20)  # the function finished offsets 0..19 of every partition
        reader_b.start()
        await until(lambda: len(second.assigned) == 2 and second.total() == 2 * 30)
        moved = {a.tp.partition for a in second.assigned}
        # The partitions that moved were committed as they were revoked: B starts where A finished.
        assert {
            p: c for p, c in committed_offsets(kafka_broker, f"g-{topic}", topic).items() if p in moved
        } == {p: 20 for p in moved}
        assert all([r["offset"] for r in second.records[p]] == list(range(20, 50)) for p in moved)
        kept = [a for a in first.assigned if a.tp.partition not in moved]
        if strategy == "cooperative-sticky":
            # Incremental: A's other partitions were never revoked; their first epoch goes on.
            assert {a.tp.partition for a in first.revoked} == moved
            assert len(kept) == 2 and all(a.active for a in kept)
        else:
            assert len(first.revoked) == 4  # eager: everything stopped, then came back
    finally:
        await loop.run_in_executor(None, reader_b.close, 20.0)
        await loop.run_in_executor(None, reader_a.close, 20.0)


class TimedCollector(Collector):
    """A member whose function finishes each batch at once (so its reader commits as it goes);
    notes when each partition's records reached the event loop (wall clock, as log records are
    stamped)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, int]] = []

    def records_fetched(self, assignment: PartitionAssignment, records: list[Any], sizes: list[int]) -> None:
        super().records_fetched(assignment, records, sizes)
        self.arrivals.append((time.time(), assignment.tp.partition))
        assignment.complete(records[-1]["offset"] + 1)

    def partitions_revoked(self, assignments: list[PartitionAssignment]) -> None:
        super().partitions_revoked(assignments)
        self.revoked_at = time.time()


def paced(partitions: int, stop: threading.Event, interval: float = 0.01) -> Iterator[OutgoingRecord]:
    """One record per partition every `interval` until `stop` is set."""
    i = 0
    while not stop.is_set():
        for partition in range(partitions):
            yield OutgoingRecord(value=f"v{i}".encode(), key=None, partition=partition)
        i += 1
        time.sleep(interval)


async def test_kept_partitions_are_read_while_the_group_rebalances(
    kafka_broker: str,
    new_topic: Callable[..., str],
    reader_class: ReaderClass,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under the cooperative protocol a member reads on from the partitions it keeps while a
    member joins, as Java's client does: kafka-python's own poll returns nothing while the member
    rejoins, and librdkafka holds a commit made during the round until it ends."""
    topic = new_topic(partitions=4)
    loop = asyncio.get_running_loop()
    first, second = TimedCollector(), Collector()
    label = f"mapping m-{topic} (function f)"

    def member(events: Collector) -> GroupReader[Any]:
        base = settings(kafka_broker, topic, f"g-{topic}", label=label)
        kwargs = {**base.consumer_kwargs, "partition_assignment_strategy": ("cooperative-sticky",)}
        return reader_class(
            ReaderSettings(topic=topic, consumer_kwargs=kwargs, start="earliest", label=label),
            events,
            loop,
            estimated_entry_size,
        )

    stop = threading.Event()
    producing = loop.run_in_executor(None, lambda: produce(kafka_broker, topic, paced(4, stop)))
    reader_a, reader_b = member(first), member(second)
    caplog.set_level(logging.INFO, logger="esm.sources.kafka_group")
    reader_a.start()
    try:
        await until(lambda: {p for _, p in first.arrivals} == {0, 1, 2, 3})
        joined = time.time()
        reader_b.start()
        await until(lambda: len(second.assigned) == 2 and second.total() > 0)
        stop.set()
        await producing

        moved = {a.tp.partition for a in second.assigned}
        kept = {0, 1, 2, 3} - moved
        assert {a.tp.partition for a in first.revoked} == moved
        # The window: from A's rejoin (kafka-python says when; librdkafka does not, so from B's
        # start) to the end of the round that revoked the moved partitions (about two seconds on
        # Tansu). A's kept partitions went on delivering in its second half too, after anything
        # fetched before the rejoin was handed over.
        started = [r.created for r in caplog.records if "consumer group rebalancing" in r.getMessage()]
        if reader_class is KafkaGroupReader:
            assert started, "member A never said it was rebalancing"
        window = (started[0] if started else joined, first.revoked_at)
        midpoint = sum(window) / 2
        late = {p for t, p in first.arrivals if midpoint < t < window[1]}
        assert kept <= late, f"kept {sorted(kept)}; delivered late in {window}: {sorted(late)}"
    finally:
        stop.set()
        await loop.run_in_executor(None, reader_b.close, 20.0)
        await loop.run_in_executor(None, reader_a.close, 20.0)


async def test_records_produced_while_the_reader_is_settled_are_delivered_and_committed(
    kafka_broker: str, new_topic: Callable[..., str], reader_class: ReaderClass
) -> None:
    """With everything committed the reader polls for long stretches (idle_poll_timeout_ms):
    records that arrive meanwhile are still delivered, and their completion committed."""
    topic = new_topic(partitions=2)
    produce(kafka_broker, topic, records(4))
    reader, events = started(
        reader_class, settings(kafka_broker, topic, f"g-{topic}", idle_poll_timeout_ms=3000)
    )
    try:
        await until(lambda: events.total() == 4)
        by_partition = {a.tp.partition: a for a in events.assigned}
        for assignment in by_partition.values():
            assignment.complete(2)
        await until(lambda: all(a.committed == 2 for a in by_partition.values()))
        await asyncio.sleep(0.5)  # settled: the reader is in a long poll now
        produce(kafka_broker, topic, records(4))
        await until(lambda: events.total() == 8)
        assert [r["offset"] for r in events.records[0]] == [0, 1, 2, 3]
        by_partition[1].complete(4)
        await until(lambda: by_partition[1].committed == 4)
        assert committed_offsets(kafka_broker, f"g-{topic}", topic) == {0: 2, 1: 4}
    finally:
        reader.stop_fetching()
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)


class FirstLookupTimesOut(Consumer):  # type: ignore[misc]
    """The real librdkafka client, whose first committed-offset lookup gets a timeout too short for
    any broker to answer in: librdkafka's own "Local: Timed out", inside the assign callback."""

    def __init__(self, lookups: list[float], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lookups = lookups

    def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
        self._lookups.append(timeout)
        return super().committed(partitions, timeout=1e-6 if len(self._lookups) == 1 else timeout)


async def test_an_assign_callback_that_times_out_makes_the_confluent_reader_reconnect(
    kafka_broker: str, new_topic: Callable[..., str]
) -> None:
    """confluent-kafka raises a failed rebalance callback from poll() as a bare KafkaError object,
    which no `except Exception` matches: the reader's thread ended, and the mapping read nothing
    more. Now the reader reconnects, and delivers every record from the start."""
    topic = new_topic(partitions=2)
    produce(kafka_broker, topic, records(10))
    lookups: list[float] = []
    events = Collector()
    reader = ConfluentGroupReader(
        settings(kafka_broker, topic, f"g-{topic}", reconnect_backoff_seconds=0.2),
        events,
        asyncio.get_running_loop(),
        estimated_entry_size,
        consumer_factory=lambda *args, **kwargs: FirstLookupTimesOut(lookups, *args, **kwargs),
    )
    reader.start()
    try:
        await until(lambda: events.total() == 10)
        assert len(lookups) >= 2  # the one that timed out, then the new consumer's
        assert {p: [r["offset"] for r in rs] for p, rs in events.records.items()} == {
            0: [0, 1, 2, 3, 4],
            1: [0, 1, 2, 3, 4],
        }
        assert reader._thread.is_alive()
    finally:
        reader.stop_fetching()
        await asyncio.get_running_loop().run_in_executor(None, reader.close, 20.0)


@pytest.mark.parametrize(
    ("consumer_kwargs", "expected"),
    [
        ({}, 100),  # kafka-python's defaults: fetch.max.wait.ms 500, retry.backoff.ms 100
        ({"fetch_max_wait_ms": 500}, 100),
        ({"fetch_max_wait_ms": 100}, 100),
        ({"fetch_max_wait_ms": 20}, 20),  # poll's idle sleep no longer than the fetch wait
        ({"fetch_max_wait_ms": 10}, 10),
        ({"fetch_max_wait_ms": 0}, 1),  # never 0: kafka-python would spin
        ({"fetch_max_wait_ms": 10, "retry_backoff_ms": 250}, 250),  # the mapping's own setting wins
        ({"retry_backoff_ms": 5}, 5),
    ],
)
def test_retry_backoff_is_no_longer_than_the_fetch_wait(
    consumer_kwargs: dict[str, Any], expected: int
) -> None:
    assert retry_backoff_ms(consumer_kwargs) == expected


def test_the_consumer_is_made_with_that_retry_backoff() -> None:
    made: list[dict[str, Any]] = []

    def factory(**kwargs: Any) -> Any:
        made.append(kwargs)
        raise KafkaError("no broker here")

    settings = ReaderSettings(topic="t", consumer_kwargs={"fetch_max_wait_ms": 10}, start="earliest")
    loop = asyncio.new_event_loop()
    try:
        reader = KafkaGroupReader(settings, Collector(), loop, len, consumer_factory=factory)
        with pytest.raises(ClientError):
            reader._connect()
    finally:
        loop.close()
    assert made[0]["retry_backoff_ms"] == 10
    assert made[0]["fetch_max_wait_ms"] == 10
