"""esm.redis_client: a task cancelled during a Redis command ends cancelled, even where redis-py's
`asyncio.wait_for` (Python 3.11) swallowed the cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from esm.redis_client import Redis, keeping_cancellation


async def swallows_cancellation() -> str:
    """What wait_for does when the write it waits for completes as the task is cancelled."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        return "written"
    return "slept"


async def returns_at_once() -> str:
    return "answer"


async def settled(task: asyncio.Task[str]) -> str:
    """'cancelled', 'timeout' or the task's result."""
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"
    except TimeoutError:
        return "timeout"


async def within_timeout(make: Callable[[], Awaitable[str]], seconds: float) -> str:
    async with asyncio.timeout(seconds):
        return await make()


@pytest.mark.parametrize(
    ("work", "cancel_after", "outcome"),
    [
        # Nothing cancelled: the result passes through.
        (lambda: keeping_cancellation(returns_at_once()), None, "answer"),
        # Cancelled, and the awaitable let the CancelledError through: it stays a cancellation.
        (lambda: keeping_cancellation(asyncio.sleep(10, "slept")), 0.01, "cancelled"),
        # Cancelled, and the awaitable swallowed it: raised all the same.
        (lambda: keeping_cancellation(swallows_cancellation()), 0.01, "cancelled"),
        # Without the guard the task would carry on (what the guard is for).
        (swallows_cancellation, 0.01, "written"),
        # An asyncio.timeout whose own cancellation was swallowed still ends in TimeoutError.
        (
            lambda: within_timeout(lambda: keeping_cancellation(swallows_cancellation()), 0.01),
            None,
            "timeout",
        ),
    ],
)
async def test_keeping_cancellation(
    work: Callable[[], Awaitable[str]], cancel_after: float | None, outcome: str
) -> None:
    async def run() -> str:
        return await work()

    task = asyncio.create_task(run())
    if cancel_after is not None:
        await asyncio.sleep(cancel_after)
        task.cancel()
    assert await settled(task) == outcome


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url.split("?")[0], socket_timeout=5)
    assert isinstance(redis, Redis)
    try:
        yield redis
    finally:
        await redis.aclose()


async def commands_until_cancelled(step: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        await step()


@pytest.mark.parametrize("via", ["command", "pipeline"])
async def test_a_loop_of_commands_stops_at_whatever_moment_it_is_cancelled(client: Redis, via: str) -> None:
    """Cancelled after 0, 1, 2, ... turns of the event loop, the task lands in every phase of a
    command (writing, reading, in between); with redis-py's own client about a third of these
    cancellations were swallowed and the loop ran on."""

    async def command() -> None:
        await client.get("esm-test-cancellation")

    async def pipeline() -> None:
        async with client.pipeline(transaction=True) as pipe:
            pipe.get("esm-test-cancellation")
            await pipe.execute()

    step = command if via == "command" else pipeline
    await step()  # connected before the sweep
    ran_on = []
    for turns in range(60):
        stop = asyncio.Event()
        task = asyncio.create_task(commands_until_cancelled(step, stop))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task], timeout=2)
        if not task.done():
            ran_on.append(turns)
            stop.set()
            await asyncio.wait([task], timeout=2)
        assert task.done()
    assert ran_on == [], f"still running after being cancelled at these turns: {ran_on}"
