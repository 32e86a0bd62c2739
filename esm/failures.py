"""The failure policy: a pure function of (outcome, retry state) -> what the shard does next.

No I/O and no clock reads: the shard consumer carries out the decision. Today's rules, as Lambda
applies them with default settings:
- success: checkpoint past the whole batch;
- a function error or timeout: retry the same batch, counting an attempt, backing off
  exponentially (1 s doubling to a cap); retried forever (MaximumRetryAttempts -1);
- a throttle or an unreachable function: retry without counting an attempt, with a shorter
  backoff, since nothing ran.
Later parameters (MaximumRetryAttempts, MaximumRecordAgeInSeconds, bisect, partial batch
responses, destinations) extend `decide` with more `Decision` kinds.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from esm.outcomes import InvokeOutcome, OutcomeKind


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter: delay(n) in [d/2, d], d = min(cap, initial * 2**n)."""

    initial_seconds: float
    cap_seconds: float

    def delay(self, failures: int, rand: Callable[[], float]) -> float:
        base = min(self.cap_seconds, self.initial_seconds * (2 ** min(failures, 32)))
        return float(base / 2 + rand() * base / 2)


@dataclass(frozen=True)
class RetryState:
    """Where a batch stands: function-error attempts (Lambda's count) and pre-function failures."""

    attempts: int = 0
    transient_failures: int = 0

    @property
    def invoke_count(self) -> int:
        """Lambda's approximateInvokeCount: invocations that reached the function, this one included."""
        return self.attempts + 1


class DecisionKind(enum.Enum):
    CHECKPOINT = "checkpoint"
    RETRY = "retry"


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    # RETRY: how long to wait before the next attempt, and the state it runs with.
    delay_seconds: float = 0.0
    next_state: RetryState = RetryState()


@dataclass(frozen=True)
class FailurePolicy:
    function_error_backoff: Backoff = Backoff(initial_seconds=1.0, cap_seconds=30.0)
    transient_backoff: Backoff = Backoff(initial_seconds=0.05, cap_seconds=2.0)

    def decide(
        self, outcome: InvokeOutcome, state: RetryState, rand: Callable[[], float] = random.random
    ) -> Decision:
        if outcome.kind is OutcomeKind.SUCCESS:
            return Decision(DecisionKind.CHECKPOINT)
        if outcome.kind.function_ran:
            delay = self.function_error_backoff.delay(state.attempts, rand)
            return Decision(DecisionKind.RETRY, delay, RetryState(state.attempts + 1, 0))
        delay = self.transient_backoff.delay(state.transient_failures, rand)
        return Decision(DecisionKind.RETRY, delay, RetryState(state.attempts, state.transient_failures + 1))
