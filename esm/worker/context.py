"""The `context` argument handlers receive, shaped like Lambda's Python runtime's LambdaContext."""

from __future__ import annotations

from collections.abc import Callable

from esm.worker.invocation_meta import InvocationMeta


class LambdaContext:
    """Per-invocation facts plus a countdown to the timeout.

    As in Lambda's runtime, memory_limit_in_mb is a string (it comes from an environment
    variable there), and identity / client_context are None for event source invocations.
    """

    def __init__(
        self, meta: InvocationMeta, log_stream_name: str, deadline: float, clock: Callable[[], float]
    ) -> None:
        self.aws_request_id = meta.request_id
        self.function_name = meta.function_name
        self.function_version = meta.function_version
        self.invoked_function_arn = meta.invoked_function_arn
        self.memory_limit_in_mb = str(meta.memory_limit_mb)
        self.log_group_name = f"/aws/lambda/{meta.function_name}"
        self.log_stream_name = log_stream_name
        self.identity: object | None = None
        self.client_context: object | None = None
        self.tenant_id: str | None = None
        self._deadline = deadline
        self._clock = clock

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r}, "
            f"function_version={self.function_version!r}, invoked_function_arn={self.invoked_function_arn!r})"
        )
