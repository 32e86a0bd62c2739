"""confluent-kafka's periodic commits: sent without waiting, marked committed only when librdkafka
reports success through on_commit, re-sent after a failure, never twice while on their way. The
consumer is a stand-in that records commit calls (the reader's thread is not run); the real
round trip is in tests/sources/test_kafka.py."""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId
from esm.sources.kafka_confluent import ConfluentGroupReader
from esm.sources.kafka_group import ReaderSettings

from .kafka_events import Collector

P0, P1 = TopicPartitionId("t", 0), TopicPartitionId("t", 1)


class Consumer:
    def __init__(self, refuse: bool = False) -> None:
        self.commits: list[tuple[list[tuple[int, int]], bool]] = []
        self._refuse = refuse

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self._refuse:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        self.commits.append(([(o.partition, o.offset) for o in offsets], asynchronous))


def reader_owning(events: Collector, *completed: tuple[TopicPartitionId, int]) -> ConfluentGroupReader:
    reader = ConfluentGroupReader(
        ReaderSettings(topic="t", consumer_kwargs={"group_id": "g"}, start="earliest"),
        events,
        asyncio.get_running_loop(),
        len,
    )
    reader._on_assigned([tp for tp, _ in completed], committed={})
    for tp, offset in completed:
        reader._assignments[tp].complete(offset)
    return reader


def answer(partitions: list[tuple[TopicPartitionId, int]]) -> list[TopicPartition]:
    """What on_commit gets for these offsets."""
    return [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in partitions]


def assignment(reader: ConfluentGroupReader, tp: TopicPartitionId) -> PartitionAssignment:
    return reader._assignments[tp]


async def test_a_periodic_commit_is_sent_without_waiting_and_counts_once_answered() -> None:
    events = Collector()
    reader = reader_owning(events, (P0, 40), (P1, 7))
    consumer = Consumer()
    reader._commit_completed(consumer)
    assert consumer.commits == [([(0, 40), (1, 7)], True)]
    assert assignment(reader, P0).committed is None  # not before librdkafka says so

    reader._commit_completed(consumer)  # the next interval: the same offsets are on their way
    assert len(consumer.commits) == 1

    reader._on_commit(None, answer([(P0, 40), (P1, 7)]))
    await asyncio.sleep(0)
    assert (assignment(reader, P0).committed, assignment(reader, P1).committed) == (40, 7)
    assert events.commits == 2


async def test_a_refused_commit_is_counted_and_sent_again() -> None:
    events = Collector()
    reader = reader_owning(events, (P0, 40))
    consumer = Consumer()
    reader._commit_completed(consumer)
    reader._on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), answer([(P0, 40)]))
    await asyncio.sleep(0)
    assert assignment(reader, P0).committed is None
    assert events.commits == 0

    reader._commit_completed(consumer)
    assert consumer.commits == [([(0, 40)], True), ([(0, 40)], True)]


async def test_a_commit_librdkafka_refuses_at_once_is_sent_again_next_time() -> None:
    events = Collector()
    reader = reader_owning(events, (P0, 40))
    reader._commit_completed(Consumer(refuse=True))
    consumer = Consumer()
    reader._commit_completed(consumer)
    assert consumer.commits == [([(0, 40)], True)]


async def test_answers_to_other_commits_are_ignored() -> None:
    events = Collector()
    reader = reader_owning(events, (P0, 40))
    reader._on_commit(None, answer([(P0, 40)]))  # e.g. the synchronous commit of a revoke
    reader._on_commit(KafkaError(KafkaError.REBALANCE_IN_PROGRESS), None)
    await asyncio.sleep(0)
    assert assignment(reader, P0).committed is None
    assert events.commits == 0


async def test_closing_commits_synchronously() -> None:
    events = Collector()
    reader = reader_owning(events, (P0, 40))
    reader._closing.set()
    calls: list[dict[TopicPartitionId, int]] = []
    reader._commit = lambda client, offsets: calls.append(offsets)  # type: ignore[method-assign]
    reader._commit_completed(Consumer())
    assert calls == [{P0: 40}]
    assert assignment(reader, P0).committed == 40
