"""A child process that hammers one permit store (run with the multiprocessing spawn method).

Every task takes a permit, bumps a counter shared by all processes, holds briefly, lowers the
counter and releases. The highest value the counter reached is what the store let run at once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier

from esm.stores import open_store


@dataclass(frozen=True)
class HammerPlan:
    store_url: str
    function: str
    limit: int
    tasks: int
    rounds: int
    hold_seconds: float


def hammer(
    plan: HammerPlan,
    start: Barrier,
    current: Synchronized[int],
    highest: Synchronized[int],
    done: Synchronized[int],
) -> None:
    asyncio.run(_hammer(plan, start, current, highest, done))


async def _hammer(
    plan: HammerPlan,
    start: Barrier,
    current: Synchronized[int],
    highest: Synchronized[int],
    done: Synchronized[int],
) -> None:
    store = open_store(plan.store_url)
    holder = f"hammer:{os.getpid()}"

    async def one_task() -> None:
        for _ in range(plan.rounds):
            permit = f"{holder}/{uuid.uuid4().hex}"
            while not await store.permits.try_acquire(plan.function, plan.limit, permit, 30.0):
                await asyncio.sleep(0.001)
            with current.get_lock():
                current.value += 1
                highest.value = max(highest.value, current.value)
            await asyncio.sleep(plan.hold_seconds)
            with current.get_lock():
                current.value -= 1
                done.value += 1
            await store.permits.release(plan.function, permit)

    try:
        start.wait(timeout=30)
        await asyncio.gather(*(one_task() for _ in range(plan.tasks)))
    finally:
        await store.close()
