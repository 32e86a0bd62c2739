"""The poller's status rounds (esm.poller.publish_status_round) against the real SQLite store:
what changed reaches the store, what did not is not rewritten, and an owner that stops
publishing is still seen as gone (its rows expire) or stale (`reported_at` against the group
session), as `esm status` judges them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from esm.mappings.factory import MappingRunner
from esm.poller import STATUS_REFRESH_SECONDS, STATUS_TTL_SECONDS, publish_status_round
from esm.status.command import report_is_stale
from esm.status.report_publishing import PublishedReports
from esm.stores import Store, open_store

OWNER = "host:1"


class ReportingRunner:
    """A running mapping as the poller sees it: an id and its shards' reports."""

    def __init__(self, mapping_id: str, reports: dict[str, dict[str, Any]]) -> None:
        self.mapping_id = mapping_id
        self.reports = reports

    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]:
        return {shard: {"owner": owner, **report} for shard, report in self.reports.items()}


@pytest.fixture
async def store(sqlite_store_url: str) -> AsyncIterator[Store]:
    opened = open_store(sqlite_store_url)
    yield opened
    await opened.close()


async def publish(store: Store, runner: ReportingRunner, published: PublishedReports, now: float) -> None:
    failure = await publish_status_round(store, [cast(MappingRunner, runner)], OWNER, published, now)
    assert failure is None


async def test_a_changed_report_arrives_and_an_unchanged_one_is_not_rewritten(store: Store) -> None:
    runner = ReportingRunner("m", {"s0": {"buffered": 0}, "s1": {"buffered": 0}})
    published = PublishedReports(STATUS_REFRESH_SECONDS)
    await publish(store, runner, published, 100.0)
    runner.reports["s1"] = {"buffered": 7}
    await publish(store, runner, published, 101.0)
    assert await store.status.read("m", 101.5) == {
        "s0": {"owner": OWNER, "buffered": 0},
        "s1": {"owner": OWNER, "buffered": 7},
    }
    # s0 was written only at 100 (it expires at 100 + TTL), s1 again at 101.
    assert await store.status.read("m", 100.0 + STATUS_TTL_SECONDS + 0.5) == {
        "s1": {"owner": OWNER, "buffered": 7}
    }


async def test_a_live_owners_unchanged_rows_never_lapse_and_a_gone_owners_do(store: Store) -> None:
    session_seconds = 6.0  # Kafka's smallest group session (group.min.session.timeout.ms)
    runner = ReportingRunner("m", {"0": {"buffered": 0}})
    published = PublishedReports(STATUS_REFRESH_SECONDS)
    now = 100.0
    while now < 120.0:
        runner.reports["0"] = {"buffered": 0, "reported_at": now, "session_seconds": session_seconds}
        await publish(store, runner, published, now)
        for moment in (now, now + 0.99):
            report = (await store.status.read("m", moment))["0"]
            assert not report_is_stale(report, moment)
        now += 1.0
    last_round = now - 1.0
    # The owner stopped: within the expiry its row is gone (it was not written every round, so
    # sooner rather than later), and a report read before that says how old it is.
    assert await store.status.read("m", last_round + STATUS_TTL_SECONDS) == {}
    report = (await store.status.read("m", last_round))["0"]
    assert report_is_stale(report, report["reported_at"] + session_seconds + 0.1)
