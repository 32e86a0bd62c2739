"""A function: where its workers listen and the limits Lambda would apply to it."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, model_validator

from esm.config.arns import FUNCTION_NAME_PATTERN
from esm.config.base import ConfigModel
from esm.config.constraints import HostPort, StrictInt, StrictStr, between, matching, non_empty
from esm.config.problems import problem
from esm.config.tls import TlsConfig
from esm.worker.lambda_environment import check_variables

ROLE_ARN_PATTERN = r"arn:[a-z-]+:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"

FunctionNameText = Annotated[
    StrictStr, matching(FUNCTION_NAME_PATTERN, "a function name (letters, digits, '-', '_'; up to 64)")
]


def _lambda_variables(variables: dict[str, str]) -> dict[str, str]:
    problems = check_variables(variables)
    if problems:
        raise problem("variables", "; ".join(problems))
    return variables


class EnvironmentConfig(ConfigModel):
    Variables: Annotated[dict[StrictStr, StrictStr], AfterValidator(_lambda_variables)] = {}
    """Environment variables for every execution environment (not Lambda's reserved names; 4 KB in all)."""


class EphemeralStorageConfig(ConfigModel):
    Size: Annotated[StrictInt, between(512, 10240)] = 512
    """MB of /tmp, 512-10240. Each environment gets a private TMPDIR (not a size-limited filesystem)."""


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
    """MB, 128-10240: the handler's memory_limit_in_mb; `esm worker --config` also enforces it per
    execution environment. Default: 128."""
    Role: (
        Annotated[StrictStr, matching(ROLE_ARN_PATTERN, "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")]
        | None
    ) = None
    """The function's execution role ARN, as in Lambda's CreateFunction; esm only shows it to the
    handler as Kinesis records' `invokeIdentityArn`. Default: none (an empty invokeIdentityArn)."""
    Environment: EnvironmentConfig = EnvironmentConfig()
    """`{Variables: {NAME: value}}` given to every execution environment (read by `esm worker --config`)."""
    EphemeralStorage: EphemeralStorageConfig = EphemeralStorageConfig()
    """`{Size: MB}`, 512-10240: each environment's private TMPDIR. Default: 512."""
    ProvisionedConcurrentExecutions: Annotated[StrictInt, between(0, 1_000_000)] | None = None
    """Environments each worker initialises before it serves; the rest start on demand (cold starts).
    Default: all of the worker's --concurrency (esm's default); 0: all on demand (Lambda's default)."""

    Tls: TlsConfig | None = None
    """`{CaFile, CertFile, KeyFile}`: reach the workers over TLS, checking their certificates against
    CaFile and presenting CertFile when they require client certificates. Default: plain gRPC."""

    @model_validator(mode="after")
    def _provisioned_within_reserved(self) -> FunctionConfig:
        reserved, provisioned = self.ReservedConcurrentExecutions, self.ProvisionedConcurrentExecutions
        if reserved is not None and provisioned is not None and provisioned > reserved:
            raise problem(
                "range",
                f"ProvisionedConcurrentExecutions {provisioned} is more than "
                f"ReservedConcurrentExecutions {reserved}",
            )
        return self

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
