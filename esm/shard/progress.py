"""A shard's progress: what its lanes completed, turned into the shard's checkpoint.

One lane: a lane's completion is the shard's checkpoint, written as it comes. Several lanes
(ParallelizationFactor): records are registered in shard order as they are dispatched, and the
checkpoint is the last record below which every lane completed (esm.shard.lanes). Writing it is
the `Checkpointer`'s (esm.ownership: fenced by the shard's ownership).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from esm.shard.contracts import Checkpointer
from esm.shard.lanes import CompletionTracker

R = TypeVar("R")


class ShardProgress(Generic[R]):
    def __init__(self, lanes: int, order_of: Callable[[R], int], checkpointer: Checkpointer[R]) -> None:
        self.lanes = lanes
        self._order_of = order_of
        self.checkpointer = checkpointer
        self._tracker: CompletionTracker[R] | None = CompletionTracker(lanes) if lanes > 1 else None
        # Per lane, (record, ticket) of each record dispatched and not yet completed, in order.
        self._pending: list[deque[tuple[R, int]]] = [deque() for _ in range(lanes)]

    @property
    def owned(self) -> bool:
        return self.checkpointer.owned

    def dispatched(self, lane: int, record: R) -> None:
        """`record`, the shard's next, went to `lane` (several lanes only)."""
        assert self._tracker is not None, "one lane needs no dispatch bookkeeping"
        self._pending[lane].append((record, self._tracker.dispatched(lane, record, self._order_of(record))))

    async def completed_through(self, lane: int, record: R) -> bool:
        """`lane` completed everything it was given up to `record`; False when ownership is gone."""
        if self._tracker is None:
            return await self.checkpointer.checkpoint_through(record)
        pending = self._pending[lane]
        ticket = None
        while pending:
            done, ticket = pending.popleft()
            if done is record:
                break
        if ticket is None:
            return self.checkpointer.owned
        moved_to = self._tracker.completed(lane, ticket)
        if moved_to is None:  # a slower lane still holds the checkpoint back
            return self.checkpointer.owned
        return await self.checkpointer.checkpoint_through(moved_to)
