"""One owned shard (a Kafka partition, a Kinesis or DynamoDB Streams shard): its life, its lanes
and its progress, the same for every source.

    source --deliver()--> lanes by key (ParallelizationFactor) --> batch loops (esm.shard.lane)
                                                    |
              completions --> ShardProgress --> fenced checkpoint (esm.ownership)

The source feeds records in shard order (`deliver`) and says when nothing more will come
(`close`, at a stream shard's end). Each record goes to lane `lane_for(key)` (esm.shard.lanes),
so records of one key keep their order; every lane has one batch in flight. The checkpoint is
the last record below which every lane completed, written by the `Checkpointer` the owner gave
(a Kafka assignment, a stream lease): a refused write means the shard was lost.

Its life is `ShardLife`'s table (esm.shard.state): the owner fires PARENTS_DONE (stream shards
wait for their parents), `run` fires INITIALIZED and, when every lane has drained a closed
source, END_REACHED; `lease_lost` and `request_shutdown` may come at any time; `run` always ends
SHUT_DOWN.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from esm.shard.contracts import Checkpointer
from esm.shard.framing import Framing
from esm.shard.lane import Lane, LaneServices
from esm.shard.lanes import lane_for, lane_for_keyless
from esm.shard.progress import ShardProgress
from esm.shard.sink import FailureSink
from esm.shard.state import ShardEvent, ShardLife, ShardState

R = TypeVar("R")


class Shard(Generic[R]):
    def __init__(
        self,
        shard_id: str,
        services: LaneServices[R],
        checkpointer: Checkpointer[R],
        *,
        lanes: int = 1,
        sink: FailureSink[R] | None = None,
        taken: Callable[[int], None] = lambda size: None,
        waiting_on_parents: bool = False,
        framing: Callable[[Lane[R]], Framing[R]] | None = None,
    ) -> None:
        """`taken`: buffered bytes left the lanes' buffers (the source's flow control).
        `framing`: how each lane cuts batches (tumbling windows); plain batches by default."""
        self.shard_id = shard_id
        self._services = services
        self._taken = taken
        initial = ShardState.WAITING_ON_PARENTS if waiting_on_parents else ShardState.INITIALIZING
        self.life = ShardLife(shard_id, initial)
        self.progress: ShardProgress[R] = ShardProgress(lanes, services.format.order, checkpointer)
        self.lanes = [
            Lane(self, index, shard_id if lanes == 1 else f"{shard_id}#{index}", services, sink, framing)
            for index in range(lanes)
        ]
        self.ended = False

    # -- what the lanes see (esm.shard.lane.LaneHost) ---------------------------------------------

    @property
    def owned(self) -> bool:
        return self.progress.owned

    async def completed_through(self, lane: int, record: R) -> bool:
        return await self.progress.completed_through(lane, record)

    def taken(self, size_bytes: int) -> None:
        self._taken(size_bytes)

    # -- what the source does ---------------------------------------------------------------------

    def deliver(self, records: Sequence[R], sizes: Sequence[int]) -> None:
        """The shard's next records, in order, with their estimated event sizes."""
        lanes = self.lanes
        if len(lanes) == 1:
            lanes[0].buffer.extend(list(records), list(sizes))
            return
        count = len(lanes)
        fmt = self._services.format
        per_lane: list[tuple[list[R], list[int]]] = [([], []) for _ in lanes]
        for record, size in zip(records, sizes, strict=True):
            key = fmt.lane_key(record)
            index = lane_for(key, count) if key is not None else lane_for_keyless(fmt.order(record), count)
            self.progress.dispatched(index, record)
            per_lane[index][0].append(record)
            per_lane[index][1].append(size)
        for lane, (lane_records, lane_sizes) in zip(lanes, per_lane, strict=True):
            lane.buffer.extend(lane_records, lane_sizes)

    def reconfigure(self, services: LaneServices[R], sink: FailureSink[R] | None) -> None:
        """New settings from the next batch of each lane on (batches in flight keep theirs)."""
        self._services = services
        for lane in self.lanes:
            lane.reconfigure(services, sink)

    def close(self) -> None:
        """Nothing more will come (the shard ended): the lanes drain what they hold and end."""
        for lane in self.lanes:
            lane.buffer.close()

    # -- life -------------------------------------------------------------------------------------

    @property
    def state(self) -> ShardState:
        return self.life.state

    def parents_done(self) -> None:
        self.life.fire(ShardEvent.PARENTS_DONE)

    def lease_lost(self) -> None:
        """Another owner has the shard now: stop at once, drop what waits (the new owner reads it
        again); a result still in flight is dropped when it arrives."""
        if self.life.state in (ShardState.LEASE_LOST, ShardState.SHUT_DOWN):
            return
        self.life.fire(ShardEvent.LEASE_LOST)
        dropped = sum(lane.drop_buffered() for lane in self.lanes)
        if dropped:
            self._services.metrics.records_abandoned.inc(dropped)

    def request_shutdown(self) -> None:
        """Stop taking batches; batches in flight finish and are checkpointed."""
        self.life.fire(ShardEvent.SHUTDOWN_REQUESTED)

    async def run(self, at_end: Callable[[], Awaitable[bool]] | None = None) -> bool:
        """Processes the shard until it is lost or shut down, or its source was closed and every
        lane drained it: then `at_end` records the end (a stream's SHARD_END checkpoint), and the
        result is whether it did."""
        life = self.life
        try:
            if life.state is ShardState.INITIALIZING:
                life.fire(ShardEvent.INITIALIZED)
            if life.processing:
                tasks = [asyncio.create_task(lane.run(), name=f"lane-{lane.name}") for lane in self.lanes]
                try:
                    await asyncio.gather(*tasks)
                finally:
                    for task in tasks:
                        task.cancel()
            if life.processing and all(lane.reached_end for lane in self.lanes):
                life.fire(ShardEvent.END_REACHED)
                self.ended = at_end is None or await at_end()
            return self.ended
        finally:
            if life.state in (ShardState.WAITING_ON_PARENTS, ShardState.INITIALIZING, ShardState.PROCESSING):
                # Cancelled (its owner was cancelled past the shutdown grace): a shutdown all the same.
                life.fire(ShardEvent.SHUTDOWN_REQUESTED)
            life.fire(ShardEvent.DRAINED)

    # -- status -----------------------------------------------------------------------------------

    def in_flight(self, describe: Callable[[R], Any]) -> list[dict[str, Any]]:
        """The batch each lane is working on: first and last position, and how many records."""
        return [
            {"first": describe(batch[0]), "last": describe(batch[-1]), "records": len(batch)}
            for batch in (lane.current for lane in self.lanes)
            if batch
        ]

    def status_fields(self) -> dict[str, Any]:
        """What every source's status report says of a shard."""
        lanes = self.lanes
        busiest = max(lanes, key=lambda lane: lane.attempts.retries)
        return {
            "state": self.life.state.value,
            "lanes": len(lanes),
            "buffered": sum(len(lane.buffer) for lane in lanes),
            "retries": busiest.attempts.retries,
            "invocations": busiest.attempts.invocations,
            "last_error": next((lane.last_error for lane in lanes if lane.last_error), None),
            "last_processing_result": _processing_result(lanes),
        }


def _processing_result(lanes: Sequence[Lane[Any]]) -> str:
    """A problem any lane has is the shard's; otherwise the first lane's result."""
    problems = [
        lane.last_processing_result for lane in lanes if lane.last_processing_result.startswith("PROBLEM")
    ]
    return problems[0] if problems else lanes[0].last_processing_result
