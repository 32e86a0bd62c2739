"""What a shard needs from the rest of the engine: the function, the source's record format, and
a fenced checkpoint (esm.ownership provides those)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from esm.dispatch.outcomes import InvokeOutcome

if TYPE_CHECKING:
    from esm.tracing.batch import InvocationTrace

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class Invoker(Protocol):
    async def invoke(self, payload: bytes, trace: InvocationTrace | None = None) -> InvokeOutcome:
        """One attempt; `trace` (only when tracing is on) gets its spans and carries its context."""
        ...


class RecordFormat(Protocol[R]):
    """A source's records as the engine sees them (one per mapping; no I/O)."""

    def build_event(self, records: Sequence[R]) -> bytes:
        """Lambda's event for these records, as the function receives it."""
        ...

    def record_time(self, record: R) -> float:
        """When the record entered the stream (epoch seconds): iterator age and record age."""
        ...

    def select(self, records: list[R]) -> list[R]:
        """The records FilterCriteria lets through (the others are checkpointed, not invoked)."""
        ...

    def index_of(self, records: Sequence[R], identifier: Any) -> int | None:
        """Where a partial batch response's itemIdentifier is in `records`, None if absent."""
        ...

    def unreadable_positions(self, records: Sequence[R]) -> list[int]:
        """Where the records the reader could not decode are (given up on, never invoked)."""
        ...

    def lane_key(self, record: R) -> str | None:
        """What orders records across lanes (a partition or item key); None when it has none."""
        ...

    def order(self, record: R) -> int:
        """The record's place in its shard (an offset, a sequence number): increasing."""
        ...

    def describe_position(self, record: R) -> str:
        """The record's position in words, e.g. `offset 1234`."""
        ...


class Checkpointer(Protocol[R_contra]):
    """A shard's fenced checkpoint: moved only forward, only while this process owns the shard."""

    @property
    def owned(self) -> bool: ...

    async def checkpoint_through(self, record: R_contra) -> bool:
        """Everything up to and including `record` completed; False when ownership was lost
        (nothing was written)."""
        ...
