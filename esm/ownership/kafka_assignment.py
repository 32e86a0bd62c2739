"""One ownership epoch of one Kafka partition by this process, shared by the consumer thread and the
event loop (aiokafka's `Assignment` idea).

The event loop records what the function has completed (`complete`); the consumer thread commits
it (`take_commit`/`mark_committed`). When the group revokes the partition, `revoke()` makes the
assignment inactive for good and hands back what completed since the last commit, which the
reader commits within the rebalance; completions arriving later are refused, so a revoked owner
commits nothing more, and the shard consumer drops its buffered and in-flight work. Kafka fences once more
on its side (a commit from an old generation is rejected).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, order=True)
class TopicPartitionId:
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass
class PartitionAssignment:
    tp: TopicPartitionId
    epoch: int
    _active: bool = True
    # Kafka's convention: the next offset to read (last processed + 1).
    _completed: int | None = None
    _committed: int | None = None
    # The offset of the first record this epoch handed to the event loop: where it started
    # reading (the committed offset, else StartingPosition's).
    _first_fetched: int | None = None
    # Bytes handed to the event loop and not yet taken into a batch (flow control).
    _buffered_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active(self) -> bool:
        return self._active

    @property
    def completed(self) -> int | None:
        return self._completed

    @property
    def committed(self) -> int | None:
        return self._committed

    @property
    def first_fetched(self) -> int | None:
        return self._first_fetched

    def fetched_from(self, offset: int) -> None:
        """Notes the offset of a fetched record; the first one noted is where reading started."""
        if self._first_fetched is None:
            self._first_fetched = offset

    def revoke(self) -> int | None:
        """Ends the epoch; returns the completed offset past the last commit (None if there is
        none), to commit while the partition is being given up. Completions arriving later are
        refused, so nothing can move past what is returned here."""
        with self._lock:
            self._active = False
            if self._completed is None or (
                self._committed is not None and self._completed <= self._committed
            ):
                return None
            return self._completed

    def complete(self, next_offset: int) -> bool:
        """Records that everything below `next_offset` succeeded. Refused (False) when the
        assignment was revoked; an offset that does not move forward is ignored."""
        with self._lock:
            if not self._active:
                return False
            if self._completed is None or next_offset > self._completed:
                self._completed = next_offset
            return True

    def take_commit(self) -> int | None:
        """The offset to commit now, if the assignment is active and has moved past the last commit."""
        with self._lock:
            if not self._active or self._completed is None:
                return None
            if self._committed is not None and self._completed <= self._committed:
                return None
            return self._completed

    def mark_committed(self, offset: int) -> None:
        with self._lock:
            if self._committed is None or offset > self._committed:
                self._committed = offset

    def add_buffered(self, delta: int) -> int:
        with self._lock:
            self._buffered_bytes += delta
            return self._buffered_bytes

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes


class GroupCheckpointer(Generic[R]):
    """A partition's checkpoint for one ownership epoch: the offset the consumer thread commits
    to the group next. Refused once the epoch is revoked; Kafka fences the commit once more."""

    def __init__(self, assignment: PartitionAssignment, offset_of: Callable[[R], int]) -> None:
        self._assignment = assignment
        self._offset_of = offset_of

    @property
    def owned(self) -> bool:
        return self._assignment.active

    async def checkpoint_through(self, record: R) -> bool:
        # Kafka's convention: commit the next offset to read.
        return self._assignment.complete(self._offset_of(record) + 1)
