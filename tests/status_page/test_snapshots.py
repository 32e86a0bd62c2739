"""StatusSnapshots: fresh snapshots shared, one refresh at a time, a stuck refresh never holds a
request past the budget (the gathering itself is faked: these are its callers' rules)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from esm.status_page.snapshots import StatusSnapshots


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Gathering:
    """Counts gatherings; each returns {"mappings": [{"n": count}]}; `hold` keeps them waiting."""

    def __init__(self) -> None:
        self.count = 0
        self.budgets: list[float] = []
        self.hold = threading.Event()
        self.hold.set()
        self.closed = False

    async def gather(self, budget: float) -> dict[str, Any]:
        self.count += 1
        self.budgets.append(budget)
        while not self.hold.is_set():
            await asyncio.sleep(0.01)
        return {"mappings": [{"n": self.count}], "unreachable": [], "gather_seconds": 0.0}

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def gathering() -> Gathering:
    return Gathering()


def snapshots(gathering: Gathering, clock: Clock, budget: float = 2.5) -> StatusSnapshots:
    return StatusSnapshots(
        gathering.gather,
        lambda: True,
        close=gathering.close,
        budget_seconds=budget,
        fresh_seconds=1.0,
        clock=clock,
        wall_clock=lambda: 1_700_000_000.0,
    )


def test_a_fresh_snapshot_is_served_again_and_an_old_one_refreshed(gathering: Gathering) -> None:
    clock = Clock()
    source = snapshots(gathering, clock)
    try:
        first = source.current()
        assert first["mappings"] == [{"n": 1}] and gathering.budgets == [2.5]
        assert first["generated_at"] == 1_700_000_000.0 and first["daemon"]["healthy"] is True
        clock.now += 0.9
        assert source.current()["mappings"] == [{"n": 1}]
        clock.now += 0.2
        assert source.current()["mappings"] == [{"n": 2}]
    finally:
        source.close()
    assert gathering.closed


def test_requests_during_a_refresh_share_it(gathering: Gathering) -> None:
    source = snapshots(gathering, Clock())
    gathering.hold.clear()
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = [pool.submit(source.current) for _ in range(4)]
            while gathering.count == 0:
                threading.Event().wait(0.01)
            gathering.hold.set()
            results = [answer.result(timeout=10) for answer in answers]
    finally:
        source.close()
    assert gathering.count == 1
    assert all(result["mappings"] == [{"n": 1}] for result in results)


def test_a_refresh_past_the_budget_serves_the_last_snapshot_marked_stale(gathering: Gathering) -> None:
    clock = Clock()
    source = snapshots(gathering, clock, budget=0.05)
    try:
        assert source.current()["mappings"] == [{"n": 1}]
        clock.now += 5
        gathering.hold.clear()
        stale = source.current()
        assert stale["stale"] is True and stale["mappings"] == [{"n": 1}]
        assert stale["unreachable"] == ["gathering the status took longer than 1.05s"]
        # Still stuck: the next request joins the same refresh instead of starting another.
        assert source.current()["stale"] is True and gathering.count == 2
        gathering.hold.set()
        fresh = source.current()
        assert fresh["mappings"] == [{"n": 2}] and "stale" not in fresh
    finally:
        gathering.hold.set()
        source.close()


def test_a_failing_gathering_is_shown_and_the_next_request_tries_again() -> None:
    calls = []

    async def broken(budget: float) -> dict[str, Any]:
        calls.append(budget)
        raise RuntimeError("bug")

    source = StatusSnapshots(broken, lambda: False, budget_seconds=1.0)
    try:
        answer = source.current()
        assert answer["stale"] is True and answer["mappings"] == [] and answer["generated_at"] is None
        assert answer["unreachable"] == ["gathering the status failed: RuntimeError('bug')"]
        assert answer["daemon"]["healthy"] is False
        source.current()
    finally:
        source.close()
    assert len(calls) == 2
