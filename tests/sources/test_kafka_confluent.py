"""ConfluentGroupReader's own decisions, with a fake librdkafka consumer (the reader's behaviour
against a real broker is in tests/sources/test_kafka.py)."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from esm.ownership.kafka_assignment import TopicPartitionId
from esm.sources.kafka_confluent import ConfluentGroupReader
from esm.sources.kafka_group import ClientError, ReaderSettings

from .kafka_events import Collector

TIMED_OUT = "Failed to get committed offsets: Local: Timed out"


def raise_bare_kafka_error() -> None:
    """What confluent-kafka's close() does when a rebalance callback failed during it: a KafkaError
    object raised as the exception itself (set from C; Python code cannot raise it)."""
    error = KafkaError(KafkaError._TIMED_OUT, TIMED_OUT)
    ctypes.pythonapi.PyErr_SetObject(ctypes.py_object(KafkaError), ctypes.py_object(error))


def raise_kafka_exception() -> None:
    raise KafkaException(KafkaError(KafkaError._TIMED_OUT, TIMED_OUT))


class OwnBug(Exception):
    pass


def raise_own_exception() -> None:
    raise OwnBug("a callback of ours failed")


class Failing:
    """A consumer whose calls that serve callbacks (poll, consume, close) fail with `fail`."""

    def __init__(self, fail: Callable[[], None]) -> None:
        self._fail = fail

    def close(self) -> None:
        self._fail()

    def poll(self, timeout: float) -> None:
        self._fail()

    def consume(self, num_messages: int, timeout: float) -> None:
        self._fail()


class FirstPollReturns(Failing):
    def poll(self, timeout: float) -> object:
        return object()


def poll(reader: ConfluentGroupReader, client: object) -> None:
    reader._poll(client, 100)


def close(reader: ConfluentGroupReader, client: object) -> None:
    reader._close_client(client)


@pytest.fixture
def reader() -> Iterator[ConfluentGroupReader]:
    loop = asyncio.new_event_loop()
    try:
        yield ConfluentGroupReader(
            ReaderSettings(topic="t", consumer_kwargs={}, start="earliest"), Collector(), loop, len
        )
    finally:
        loop.close()


@pytest.mark.parametrize(
    "call, client",
    [
        (close, Failing),
        (poll, Failing),
        (poll, FirstPollReturns),  # consume() after a first message
    ],
)
@pytest.mark.parametrize("fail", [raise_bare_kafka_error, raise_kafka_exception])
def test_a_failure_served_by_a_client_call_is_a_client_error(
    reader: ConfluentGroupReader,
    call: Callable[[ConfluentGroupReader, object], None],
    client: Callable[[Callable[[], None]], object],
    fail: Callable[[], None],
) -> None:
    """A ClientError is what the reader's thread catches (it reconnects); the bare KafkaError, as
    poll() and close() raise a failed rebalance callback, matched no `except Exception` and
    ended the thread."""
    with pytest.raises(ClientError, match="Local: Timed out"):
        call(reader, client(fail))


@pytest.mark.parametrize("call", [close, poll])
def test_an_exception_of_our_own_goes_on_as_it_is(
    reader: ConfluentGroupReader, call: Callable[[ConfluentGroupReader, object], None]
) -> None:
    with pytest.raises(OwnBug):
        call(reader, Failing(raise_own_exception))


class CommittedLookups:
    """Records the timeout of each committed-offset lookup and answers 'nothing committed'."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.timeouts.append(timeout)
        return [TopicPartition(p.topic, p.partition, -1001) for p in partitions]

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def seek(self, partition: TopicPartition) -> None:
        pass


@pytest.mark.parametrize(
    "consumer_kwargs, expected",
    [
        ({}, 5.0),  # the commit bound
        ({"session_timeout_ms": 1500}, 0.75),  # half a short session
    ],
)
def test_committed_offsets_are_looked_up_within_the_commit_timeout(
    consumer_kwargs: dict[str, int], expected: float
) -> None:
    """In the assign callback and when an epoch restarts: not librdkafka's 30 s wait of before."""
    loop = asyncio.new_event_loop()
    try:
        settings = ReaderSettings(topic="t", consumer_kwargs=consumer_kwargs, start="earliest")
        reader = ConfluentGroupReader(settings, Collector(), loop, len)
        client = CommittedLookups()
        reader._assign(client, [TopicPartition("t", 0)])
        reader._position_at_start(client, TopicPartitionId("t", 0))
        assert client.timeouts == [expected, expected]
    finally:
        loop.close()
