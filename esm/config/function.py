"""A function: where its workers listen and the limits Lambda would apply to it."""

from __future__ import annotations

from typing import Annotated

from esm.config.arns import FUNCTION_NAME_PATTERN
from esm.config.base import ConfigModel
from esm.config.constraints import HostPort, StrictInt, StrictStr, between, matching, non_empty

ROLE_ARN_PATTERN = r"arn:[a-z-]+:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"

FunctionNameText = Annotated[
    StrictStr, matching(FUNCTION_NAME_PATTERN, "a function name (letters, digits, '-', '_'; up to 64)")
]


class FunctionConfig(ConfigModel):
    FunctionName: FunctionNameText
    """The name mappings refer to (Lambda's rules: letters, digits, '-', '_', up to 64). Required."""
    Endpoints: Annotated[tuple[HostPort, ...], non_empty("host:port endpoint")]
    """The function's worker processes, each `host:port` (gRPC). Required, at least one."""
    ReservedConcurrentExecutions: Annotated[StrictInt, between(1, 1_000_000)] | None = None
    """Most invocations in flight at once, across every mapping, process and host. Default: no limit."""
    Timeout: Annotated[StrictInt, between(1, 900)] = 3
    """Seconds an invocation may run, 1-900. Default: 3 (Lambda's default)."""
    MemorySize: Annotated[StrictInt, between(128, 10240)] = 128
    """MB reported to the handler as memory_limit_in_mb, 128-10240. Default: 128."""
    Role: (
        Annotated[StrictStr, matching(ROLE_ARN_PATTERN, "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")]
        | None
    ) = None
    """The function's execution role ARN, as in Lambda's CreateFunction; esm only shows it to the
    handler as Kinesis records' `invokeIdentityArn`. Default: none (an empty invokeIdentityArn)."""

    @property
    def name(self) -> str:
        return self.FunctionName

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self.Endpoints

    @property
    def timeout_seconds(self) -> int:
        return self.Timeout

    @property
    def reserved_concurrency(self) -> int | None:
        return self.ReservedConcurrentExecutions

    @property
    def memory_size_mb(self) -> int:
        return self.MemorySize
