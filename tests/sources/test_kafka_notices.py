"""What a Kafka reader says while it waits: the lines, and when it says nothing."""

from __future__ import annotations

import pytest

from esm.sources.kafka_notices import ReaderNotices

KWARGS = {"bootstrap_servers": ["127.0.0.1:9092", "127.0.0.1:9093"], "group_id": "g"}


def _notices() -> ReaderNotices:
    return ReaderNotices("mapping m-1 (function fn)", "orders", KWARGS, 1.5, 2.0, 60.0)


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.name == "esm.sources.kafka_notices"
    ]


def test_brokers_down_and_back(caplog: pytest.LogCaptureFixture) -> None:
    notices = _notices()
    notices.reachability(False, now=13.0, since=10.0, error="KafkaTimeoutError: Unable to bootstrap")
    notices.reachability(False, now=14.0)
    notices.reachability(True, now=20.0)
    where = "Kafka brokers 127.0.0.1:9092,127.0.0.1:9093 (topic orders, group g)"
    assert _said(caplog) == [
        f"ERROR mapping m-1 (function fn): cannot reach the {where} for 3s: KafkaTimeoutError: Unable to "
        "bootstrap; retrying",
        f"WARNING mapping m-1 (function fn): reached the {where} again after 10s",
    ]


@pytest.mark.parametrize(
    ("owned", "waiting", "brokers_down", "said"),
    [
        (0, True, False, True),
        (0, False, False, False),  # settled in the group, the other members own every partition
        (2, False, False, False),
        (0, True, True, False),  # the brokers' own line says it
    ],
)
def test_no_partition_assigned_is_said_only_while_waiting_for_the_coordinator(
    caplog: pytest.LogCaptureFixture, owned: int, waiting: bool, brokers_down: bool, said: bool
) -> None:
    notices = _notices()
    if brokers_down:
        notices.reachability(False, now=0.0, since=-5.0)
    caplog.clear()
    for now in (0.0, 1.0, 2.0, 3.0):
        notices.assignment(owned, waiting, now)
    expected = (
        "WARNING mapping m-1 (function fn): no partition of topic orders assigned by the group "
        "coordinator after 2s (group g, session timeout 1.5s); waiting for the broker to assign"
    )
    assert _said(caplog) == ([expected] if said else [])
    if said:
        notices.assignment(1, False, 9.0)
        assert _said(caplog)[-1] == (
            "WARNING mapping m-1 (function fn): no longer waiting for the group coordinator (group g) "
            "after 9s; owns 1 partitions of topic orders"
        )
