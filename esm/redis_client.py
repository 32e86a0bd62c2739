"""The asyncio Redis client esm uses (the store and the Redis stream destination): redis-py's, with
cancellation kept.

On Python 3.11, redis-py writes each command under `asyncio.wait_for`, which returns the write's
result instead of raising when the task is cancelled just as the write completes. The command
then finishes normally and the cancellation is gone: a loop stopped by cancelling its task (a
lease loop, a shard) would run on, renewing what it should have let expire. This client checks,
after each command and pipeline, whether the task was cancelled while it ran, and raises the
cancellation it swallowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio
import redis.asyncio.client

T = TypeVar("T")


async def keeping_cancellation(awaitable: Awaitable[T]) -> T:
    """Awaits `awaitable`; when the task was cancelled meanwhile but `awaitable` returned all the
    same (it swallowed the CancelledError), raises it."""
    task = asyncio.current_task()
    cancels_before = task.cancelling() if task is not None else 0
    result = await awaitable
    if task is not None and task.cancelling() > cancels_before:
        # The request is still counted on the task (asyncio.timeout reads the count to tell its
        # own cancellation from another's), so raising is what delivering it would have done.
        raise asyncio.CancelledError
    return result


class Redis(redis.asyncio.Redis):
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # redis-py's own
        return await keeping_cancellation(command)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class Pipeline(redis.asyncio.client.Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return await keeping_cancellation(super().execute(raise_on_error))
