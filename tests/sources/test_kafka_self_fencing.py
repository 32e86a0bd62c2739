"""GroupReader's self-fencing, table-driven on a reader whose client is a plain stand-in: only
the group contact and the client's assignment matter to the decision (the thread is not run)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from esm.ownership.kafka_assignment import TopicPartitionId
from esm.sources.kafka_group import GroupReader, ReaderSettings

from .kafka_events import Collector

P0, P1 = TopicPartitionId("t", 0), TopicPartitionId("t", 1)
SESSION = 1.5


@dataclass
class Client:
    heard_at: float
    assigned: set[TopicPartitionId]


class Reader(GroupReader[Client]):
    def _connect(self) -> Client:
        raise NotImplementedError

    def _poll(self, client: Client, timeout_ms: int) -> dict[TopicPartitionId, list[Any]]:
        return {}

    def _commit(self, client: Client, offsets: dict[TopicPartitionId, int]) -> None:
        raise AssertionError("a fenced member must not commit")

    def _position_at_start(self, client: Client, tp: TopicPartitionId) -> int | None:
        return None

    def _pause(self, client: Client, tps: Sequence[TopicPartitionId]) -> None: ...

    def _resume(self, client: Client, tp: TopicPartitionId, next_offset: int | None) -> None: ...

    def _highwater(self, client: Client, tp: TopicPartitionId) -> int | None:
        return None

    def _close_client(self, client: Client) -> None: ...

    def _group_contact(self, client: Client) -> tuple[float, float] | None:
        return client.heard_at, SESSION

    def _still_assigned(self, client: Client) -> set[TopicPartitionId]:
        return client.assigned


@dataclass(frozen=True)
class Case:
    name: str
    silent_for: float
    # After the fence (if any), the coordinator answers again holding these partitions.
    still_assigned: frozenset[TopicPartitionId]
    fenced: bool
    resumed: frozenset[TopicPartitionId]


CASES = [
    Case("heard within the session", SESSION - 0.1, frozenset({P0, P1}), fenced=False, resumed=frozenset()),
    Case("silent past the session, then kept", SESSION + 0.1, frozenset({P0, P1}), True, frozenset({P0, P1})),
    Case("silent past the session, one moved", SESSION + 0.1, frozenset({P1}), True, frozenset({P1})),
    Case("silent past the session, evicted", SESSION + 0.1, frozenset(), True, frozenset()),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_a_member_the_group_no_longer_answers_stops_its_partitions(case: Case) -> None:
    events = Collector()
    reader = Reader(
        ReaderSettings(topic="t", consumer_kwargs={}, start="earliest"),
        events,
        asyncio.get_running_loop(),
        lambda record: 0,
    )
    first = reader._on_assigned([P0, P1])
    reader._send_notifications()
    client = Client(heard_at=100.0, assigned={P0, P1})

    reader._self_fence(client, now=100.0 + case.silent_for)
    await asyncio.sleep(0)

    assert all(not a.active for a in first) == case.fenced
    assert all(a.active for a in first) == (not case.fenced)
    # The group answers again.
    client.heard_at, client.assigned = 200.0, set(case.still_assigned)
    reader._self_fence(client, now=200.5)
    reader._send_notifications()
    await asyncio.sleep(0)
    newer = [a for a in events.assigned if a not in first]
    assert {a.tp for a in newer} == case.resumed
    assert all(a.active for a in newer)
