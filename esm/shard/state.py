"""The life of one shard (a Kafka partition, a Kinesis or DynamoDB shard) in this process.

    WAITING_ON_PARENTS --parents_done--> INITIALIZING --initialized--> PROCESSING
          |                                  |                          |  |  |
          |                                  |                end_reached  |  shutdown_requested
          |                                  |                          v  |  v
          +--------- lease_lost / shutdown --+---------------> SHARD_END   |  SHUTTING_DOWN
                                                                  |    lease_lost    |
                                                                  |        v         |
                                                                  |   LEASE_LOST     |
                                                                  +---> SHUT_DOWN <--+  (drained)

SHARD_END, LEASE_LOST and SHUTTING_DOWN each end in SHUT_DOWN once in-flight work is settled.
Kafka partitions start at INITIALIZING (no parents) and never reach SHARD_END. `ShardLife` is
the one place a shard's state is kept: every change goes through `next_state`, and its `halt`
event tells the lanes and the reader to stop taking work.
"""

from __future__ import annotations

import asyncio
import enum
import logging

log = logging.getLogger(__name__)


class ShardState(enum.Enum):
    WAITING_ON_PARENTS = "WAITING_ON_PARENTS"
    INITIALIZING = "INITIALIZING"
    PROCESSING = "PROCESSING"
    SHARD_END = "SHARD_END"
    LEASE_LOST = "LEASE_LOST"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    SHUT_DOWN = "SHUT_DOWN"


class ShardEvent(enum.Enum):
    PARENTS_DONE = "parents_done"
    INITIALIZED = "initialized"
    END_REACHED = "end_reached"
    LEASE_LOST = "lease_lost"
    SHUTDOWN_REQUESTED = "shutdown_requested"
    DRAINED = "drained"


S, E = ShardState, ShardEvent

TRANSITIONS: dict[tuple[ShardState, ShardEvent], ShardState] = {
    (S.WAITING_ON_PARENTS, E.PARENTS_DONE): S.INITIALIZING,
    (S.WAITING_ON_PARENTS, E.LEASE_LOST): S.LEASE_LOST,
    (S.WAITING_ON_PARENTS, E.SHUTDOWN_REQUESTED): S.SHUTTING_DOWN,
    (S.INITIALIZING, E.INITIALIZED): S.PROCESSING,
    (S.INITIALIZING, E.LEASE_LOST): S.LEASE_LOST,
    (S.INITIALIZING, E.SHUTDOWN_REQUESTED): S.SHUTTING_DOWN,
    (S.PROCESSING, E.END_REACHED): S.SHARD_END,
    (S.PROCESSING, E.LEASE_LOST): S.LEASE_LOST,
    (S.PROCESSING, E.SHUTDOWN_REQUESTED): S.SHUTTING_DOWN,
    (S.SHARD_END, E.DRAINED): S.SHUT_DOWN,
    (S.SHARD_END, E.LEASE_LOST): S.LEASE_LOST,
    (S.LEASE_LOST, E.DRAINED): S.SHUT_DOWN,
    (S.SHUTTING_DOWN, E.DRAINED): S.SHUT_DOWN,
    (S.SHUTTING_DOWN, E.LEASE_LOST): S.LEASE_LOST,
}

# Events that may arrive again once their effect has happened (a revocation racing a shutdown),
# and a shutdown asked of a shard that is already finishing its end.
_IGNORED_IN = {
    S.SHARD_END: {E.SHUTDOWN_REQUESTED},
    S.LEASE_LOST: {E.LEASE_LOST, E.SHUTDOWN_REQUESTED},
    S.SHUTTING_DOWN: {E.SHUTDOWN_REQUESTED},
    S.SHUT_DOWN: {E.LEASE_LOST, E.SHUTDOWN_REQUESTED, E.DRAINED},
}


class InvalidTransition(Exception):
    def __init__(self, state: ShardState, event: ShardEvent) -> None:
        super().__init__(f"shard in {state.value} cannot take event {event.value}")
        self.state = state
        self.event = event


def next_state(state: ShardState, event: ShardEvent) -> ShardState:
    """The state after `event`; unchanged for a repeated terminal event; InvalidTransition otherwise."""
    target = TRANSITIONS.get((state, event))
    if target is not None:
        return target
    if event in _IGNORED_IN.get(state, set()):
        return state
    raise InvalidTransition(state, event)


# States in which the shard takes no new work: its lanes and reader stop.
_HALTED = frozenset({S.SHARD_END, S.LEASE_LOST, S.SHUTTING_DOWN, S.SHUT_DOWN})


class ShardLife:
    """The state of one owned shard, moved only by events through the transition table."""

    def __init__(self, name: str, initial: ShardState) -> None:
        if initial not in (ShardState.WAITING_ON_PARENTS, ShardState.INITIALIZING):
            raise ValueError(f"a shard starts WAITING_ON_PARENTS or INITIALIZING, not {initial.value}")
        self.name = name
        self.state: ShardState = initial
        # Set once the shard stops taking work (lost, shutting down, ended).
        self.halt = asyncio.Event()
        self._lost = False

    def fire(self, event: ShardEvent) -> ShardState:
        before = self.state
        self.state = next_state(before, event)
        if self.state in _HALTED:
            self.halt.set()
        if self.state is ShardState.LEASE_LOST:
            self._lost = True
        if before is not self.state:
            log.debug("shard %s: %s -> %s", self.name, before.value, self.state.value)
        return self.state

    @property
    def processing(self) -> bool:
        return self.state is ShardState.PROCESSING

    @property
    def lost(self) -> bool:
        """The shard went to another owner (it stays lost after it shut down)."""
        return self._lost

    @property
    def finished(self) -> bool:
        return self.state is ShardState.SHUT_DOWN
