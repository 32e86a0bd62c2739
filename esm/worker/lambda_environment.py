"""The environment variables Lambda gives a function's execution environment (pure).

The worker's own environment is inherited (PATH, credentials, ...), then Lambda's reserved
variables are set, then the function's `Environment.Variables`, which may not name a reserved one.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

# Lambda refuses these in a function's Environment.Variables (its "reserved environment variables").
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
VARIABLE_NAME = re.compile(r"^[a-zA-Z]([a-zA-Z0-9_])+$")
# Lambda's limit on the total size of a function's variables (keys plus values).
MAX_VARIABLES_BYTES = 4 * 1024
ON_DEMAND = "on-demand"
PROVISIONED = "provisioned-concurrency"
DEFAULT_MEMORY_MB = 128


def check_variables(variables: Mapping[str, str]) -> list[str]:
    """Problems with a function's Environment.Variables, each naming the variable; [] when fine."""
    problems = []
    for name, value in variables.items():
        if name in RESERVED_VARIABLES:
            problems.append(f"{name}: is one of Lambda's reserved environment variables and cannot be set")
        elif not VARIABLE_NAME.match(name):
            problems.append(f"{name!r}: a name must be a letter then letters, digits or '_' (at least 2)")
        if not isinstance(value, str):
            problems.append(f"{name}: the value must be a string, got {type(value).__name__}")
    size = sum(len(name.encode()) + len(str(value).encode()) for name, value in variables.items())
    if size > MAX_VARIABLES_BYTES:
        problems.append(f"the variables take {size} bytes; Lambda allows {MAX_VARIABLES_BYTES}")
    return problems


@dataclass(frozen=True)
class FunctionEnvironment:
    """What every execution environment of the function is told about it."""

    function_name: str
    handler: str
    task_root: str
    region: str
    memory_mb: int = DEFAULT_MEMORY_MB
    version: str = "$LATEST"
    variables: Mapping[str, str] = field(default_factory=dict)

    def variables_for(
        self,
        inherited: Mapping[str, str],
        *,
        initialization_type: str,
        log_stream_name: str,
        tmpdir: str,
        runtime_api: str | None = None,
    ) -> dict[str, str]:
        """The whole environment of one execution environment's process."""
        reserved = {
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": self.task_root,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "TZ": ":UTC",
            "TMPDIR": tmpdir,
        }
        if runtime_api is not None:
            reserved["AWS_LAMBDA_RUNTIME_API"] = runtime_api
        inherited = {
            k: v for k, v in inherited.items() if k not in reserved and k != "AWS_LAMBDA_RUNTIME_API"
        }
        return {**inherited, **reserved, **self.variables}


def log_stream_name(epoch_s: float | None = None) -> str:
    """Lambda's form, one per environment: `2024/03/01/[$LATEST]<32 hex digits>`."""
    day = time.strftime("%Y/%m/%d", time.gmtime(epoch_s))
    return f"{day}/[$LATEST]{uuid.uuid4().hex}"
