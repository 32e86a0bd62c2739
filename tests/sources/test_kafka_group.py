"""esm.sources.kafka_group's idle polling: how long a poll may wait, and when the reader counts
as settled (nothing in flight), driven through one partition's life with a fake client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from esm.ownership.kafka_assignment import TopicPartitionId
from esm.sources.kafka_group import GroupReader, ReaderSettings, committed_through, poll_timeout_ms

from .kafka_events import Collector

TP = TopicPartitionId("t", 0)


@pytest.mark.parametrize(
    ("paused", "settled", "expected"),
    [
        (False, False, 250),  # work in flight: a completed batch waits at most this for its commit
        (False, True, 1000),  # nothing in flight: one pass over every partition a second
        (True, False, 10),  # a paused partition's buffer may drain at any moment
        (True, True, 10),
    ],
)
def test_poll_timeout(paused: bool, settled: bool, expected: int) -> None:
    settings = ReaderSettings(topic="t", consumer_kwargs={}, start="earliest")
    assert poll_timeout_ms(settings, paused, settled) == expected


def test_an_idle_timeout_below_the_busy_one_is_not_shorter() -> None:
    settings = ReaderSettings(
        topic="t", consumer_kwargs={}, start="earliest", poll_timeout_ms=500, idle_poll_timeout_ms=100
    )
    assert poll_timeout_ms(settings, paused=False, settled=True) == 500


@pytest.mark.parametrize(
    ("committed", "delivered_up_to", "expected"),
    [
        (None, None, True),  # nothing delivered
        (5, None, True),
        (None, 3, False),  # delivered, nothing committed yet
        (2, 3, False),
        (3, 3, True),
        (4, 3, True),  # committed past it (the group's offset from before this epoch)
    ],
)
def test_committed_through(committed: int | None, delivered_up_to: int | None, expected: bool) -> None:
    assert committed_through(committed, delivered_up_to) is expected


class FakeReader(GroupReader[None]):
    """The client calls answer from memory: the group's committed offset is 0."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        settings = ReaderSettings(topic="t", consumer_kwargs={}, start="earliest")
        super().__init__(settings, Collector(), loop, lambda record: 1)
        self.commits: list[dict[TopicPartitionId, int]] = []

    def _connect(self) -> None:
        return None

    def _poll(self, client: None, timeout_ms: int) -> dict[TopicPartitionId, list[Any]]:
        return {}

    def _commit(self, client: None, offsets: dict[TopicPartitionId, int]) -> None:
        self.commits.append(offsets)

    def _position_at_start(self, client: None, tp: TopicPartitionId) -> int | None:
        return 0

    def _pause(self, client: None, tps: Sequence[TopicPartitionId]) -> None: ...
    def _resume(self, client: None, tp: TopicPartitionId, next_offset: int | None) -> None: ...
    def _highwater(self, client: None, tp: TopicPartitionId) -> int | None:
        return None

    def _close_client(self, client: None) -> None: ...


@pytest.fixture
def reader() -> Iterator[FakeReader]:
    loop = asyncio.new_event_loop()  # never run: the notifications only queue on it
    try:
        yield FakeReader(loop)
    finally:
        loop.close()


def test_settled_only_while_every_delivered_record_is_committed(reader: FakeReader) -> None:
    assert reader._settled()  # owns nothing
    (assignment,) = reader._on_assigned([TP])
    assert not reader._settled()  # to be positioned and announced
    reader._init_new_partitions(None)
    reader._send_notifications()
    assert reader._settled()  # positioned at the committed offset, nothing delivered
    reader._deliver(TP, [{"offset": 0}, {"offset": 1}, {"offset": 2}])
    assert not reader._settled()  # in flight
    assignment.complete(2)
    reader._commit_completed(None)
    assert not reader._settled()  # offset 2 is neither completed nor committed
    assignment.complete(3)
    assert not reader._settled()  # completed, not committed
    reader._commit_completed(None)
    assert reader.commits == [{TP: 2}, {TP: 3}]
    assert reader._settled()


def test_not_settled_while_a_restart_waits_or_after_fetching_stopped(reader: FakeReader) -> None:
    reader._on_assigned([TP])
    reader._init_new_partitions(None)
    reader._send_notifications()
    reader.restart(TP)
    assert not reader._settled()
    reader._apply_restarts(None)
    reader._init_new_partitions(None)
    reader._send_notifications()
    assert reader._settled()
    reader.stop_fetching()
    assert not reader._settled()  # shutting down: the close must not wait for a long poll
