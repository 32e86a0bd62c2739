"""Waiting out a delay unless told to stop: the one way a shard waits (backoffs, polling,
store retries). Injected, so tests move time instead of sleeping."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Waits(Protocol):
    async def halted_within(self, halt: asyncio.Event, seconds: float | None) -> bool:
        """Waits `seconds` (None: for ever) unless `halt` is set first: True when halted."""
        ...


class EventLoopWaits:
    """Real time, on the event loop."""

    async def halted_within(self, halt: asyncio.Event, seconds: float | None) -> bool:
        # asyncio.timeout rather than wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that races its timeout, and a shard's task must end when it is cancelled.
        try:
            async with asyncio.timeout(seconds):
                await halt.wait()
        except TimeoutError:
            return False
        return True


REAL_WAITS: Waits = EventLoopWaits()
