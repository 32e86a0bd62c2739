"""Processes one shard's records in order: batch -> invoke -> failure policy -> fenced checkpoint.

One batch in flight at a time. The source fills the shard's `RecordBuffer` (prefetching while a
batch is in flight); this loop cuts batches, invokes the function, and carries out the policy's
decision. Its lifecycle follows `esm.shard_state` (diagram there).

Ownership: when the shard is lost (Kafka revocation, lease stolen) the loop stops taking batches;
an invocation already in flight is allowed to finish, so the function's concurrency limit stays
true, but its result is dropped and nothing is checkpointed. On shutdown the batch in flight is
finished and checkpointed, buffered records are left for the next owner, and a batch waiting to
be retried is abandoned (it is re-read from the last checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from esm.batching import BatchLimits, RecordBuffer
from esm.failures import DecisionKind, FailurePolicy, RetryState
from esm.outcomes import InvokeOutcome
from esm.shard_state import ShardEvent, ShardState, next_state

log = logging.getLogger(__name__)

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class Invoker(Protocol):
    async def invoke(self, payload: bytes) -> InvokeOutcome: ...


class ShardSource(Protocol[R_contra]):
    """What a source supplies to process its records."""

    def build_event(self, records: Sequence[R_contra]) -> bytes: ...
    def record_time(self, record: R_contra) -> float:
        """When the record entered the stream (epoch seconds), for iterator age."""
        ...

    async def checkpoint_after(self, records: Sequence[R_contra]) -> bool:
        """Marks everything up to the last of `records` done; False when ownership was lost."""
        ...

    def taken(self, size_bytes: int) -> None:
        """Buffered bytes left the buffer (flow control)."""
        ...

    @property
    def owned(self) -> bool: ...


@dataclass(frozen=True)
class ShardMetrics:
    """Pre-labelled metric children for one mapping (shared by its shards)."""

    records_invoked: _Inc
    records_delivered: _Inc
    records_dropped: _Inc
    batch_size: _Observe
    retries: _Inc
    iterator_age: _Set


class _Inc(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Observe(Protocol):
    def observe(self, amount: float) -> None: ...


class _Set(Protocol):
    def set(self, value: float) -> None: ...


# Transient failures (worker down, throttled) are logged on the first and then every Nth retry.
_TRANSIENT_LOG_EVERY = 20


class ShardConsumer(Generic[R]):
    def __init__(
        self,
        shard_id: str,
        buffer: RecordBuffer[R],
        limits: BatchLimits,
        source: ShardSource[R],
        invoker: Invoker,
        policy: FailurePolicy,
        metrics: ShardMetrics,
        initial_state: ShardState = ShardState.INITIALIZING,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.shard_id = shard_id
        self.buffer = buffer
        self._limits = limits
        self._source = source
        self._invoker = invoker
        self._policy = policy
        self._metrics = metrics
        self._wall_clock = wall_clock
        self._rand = rand
        self.state = initial_state
        # Set when the shard must stop taking batches (lost or shutting down).
        self._halt = asyncio.Event()
        self.last_error: str | None = None
        self.retry_state = RetryState()

    def _transition(self, event: ShardEvent) -> None:
        before = self.state
        self.state = next_state(self.state, event)
        if before is not self.state:
            log.debug("shard %s: %s -> %s", self.shard_id, before.value, self.state.value)

    def lease_lost(self) -> None:
        self._transition(ShardEvent.LEASE_LOST)
        self._halt.set()
        dropped = len(self.buffer)
        if dropped:
            self._metrics.records_dropped.inc(dropped)
        self.buffer.clear()

    def request_shutdown(self) -> None:
        if self.state in (ShardState.SHUT_DOWN, ShardState.LEASE_LOST):
            return
        self._transition(ShardEvent.SHUTDOWN_REQUESTED)
        self._halt.set()

    async def run(self) -> None:
        if self.state is ShardState.INITIALIZING:
            self._transition(ShardEvent.INITIALIZED)
        try:
            while self.state is ShardState.PROCESSING:
                if not await self.buffer.wait_ready(self._limits, self._halt):
                    break
                records, size = self.buffer.take(self._limits)
                self._source.taken(size)
                await self._process(records)
        finally:
            if self.state is not ShardState.SHUT_DOWN:
                self._transition(ShardEvent.DRAINED)

    async def _process(self, records: list[R]) -> None:
        payload = self._source.build_event(records)
        state = RetryState()
        self._metrics.batch_size.observe(len(records))
        while True:
            self.retry_state = state
            self._metrics.records_invoked.inc(len(records))
            self._metrics.iterator_age.set(
                max(0.0, self._wall_clock() - self._source.record_time(records[0]))
            )
            outcome = await self._invoker.invoke(payload)
            if not self._source.owned or self.state is ShardState.LEASE_LOST:
                self._metrics.records_dropped.inc(len(records))
                return
            decision = self._policy.decide(outcome, state, self._rand)
            if decision.kind is DecisionKind.CHECKPOINT:
                self.last_error = None
                self.retry_state = RetryState()
                if await self._source.checkpoint_after(records):
                    self._metrics.records_delivered.inc(len(records))
                else:
                    self._metrics.records_dropped.inc(len(records))
                    self.lease_lost()
                return
            self.last_error = outcome.describe()
            self._log_retry(outcome, decision.next_state, decision.delay_seconds)
            self._metrics.retries.inc()
            state = decision.next_state
            if self.state is not ShardState.PROCESSING:
                return  # shutting down: the batch is re-read from the last checkpoint
            try:
                await asyncio.wait_for(self._halt.wait(), timeout=decision.delay_seconds)
                return  # halted while waiting to retry
            except TimeoutError:
                pass

    def _log_retry(self, outcome: InvokeOutcome, state: RetryState, delay: float) -> None:
        if outcome.kind.function_ran:
            log.warning(
                "shard %s: function failed (attempt %d): %s; retrying in %.2fs",
                self.shard_id,
                state.attempts,
                outcome.describe(),
                delay,
            )
        elif state.transient_failures % _TRANSIENT_LOG_EVERY == 1:
            log.warning(
                "shard %s: function not invoked (%s, %d times): %s; retrying in %.2fs",
                self.shard_id,
                outcome.kind.value,
                state.transient_failures,
                outcome.describe(),
                delay,
            )
