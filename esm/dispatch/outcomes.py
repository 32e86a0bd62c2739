"""What one invocation attempt came to, as the dispatcher reports it to the failure policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class OutcomeKind(enum.Enum):
    SUCCESS = "success"
    # The function ran and failed: it raised, or returned something unusable. Counts as an attempt.
    FUNCTION_ERROR = "function_error"
    # The function ran past its Timeout. A function error too, counted as an attempt.
    TIMEOUT = "timeout"
    # No room to run it: the concurrency limit or every execution environment was busy.
    THROTTLED = "throttled"
    # The function was not reached (no endpoint answered, transport failure). Not an attempt.
    UNREACHABLE = "unreachable"

    @property
    def function_ran(self) -> bool:
        """Whether the function itself failed (Lambda counts these as retry attempts)."""
        return self in (OutcomeKind.FUNCTION_ERROR, OutcomeKind.TIMEOUT)


@dataclass(frozen=True)
class FunctionError:
    error_type: str
    error_message: str
    stack_trace: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"{self.error_type}: {self.error_message}" if self.error_message else self.error_type


@dataclass(frozen=True)
class InvokeOutcome:
    kind: OutcomeKind
    # The function's JSON response (SUCCESS only).
    response: bytes | None = None
    error: FunctionError | None = None
    # For THROTTLED / UNREACHABLE: what happened, for logs and status.
    detail: str = ""
    duration_seconds: float = 0.0
    request_id: str = field(default="", compare=False)

    @classmethod
    def success(cls, response: bytes, duration_seconds: float = 0.0, request_id: str = "") -> InvokeOutcome:
        return cls(
            OutcomeKind.SUCCESS, response=response, duration_seconds=duration_seconds, request_id=request_id
        )

    def describe(self) -> str:
        if self.error is not None:
            return self.error.summary()
        return self.detail or self.kind.value
