"""run_invocation in-process: decoding, the context, results and every kind of function error."""

from __future__ import annotations

import decimal
from typing import Any

import orjson
import pytest

from esm.worker.context import LambdaContext
from esm.worker.function_error import FunctionError
from esm.worker.invocation import run_invocation
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.protocol import Reply, ReplyKind

META = InvocationMeta(
    request_id="req-1",
    function_name="orders",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:orders",
    timeout_ms=3000,
    memory_limit_mb=512,
)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def invoke(handler: Any, payload: bytes = b"{}", clock: FakeClock | None = None) -> Reply:
    return run_invocation(handler, META, payload, "2024/01/01/[$LATEST]abc", clock=clock or FakeClock(100.0))


def error_of(reply: Reply) -> FunctionError:
    assert reply.kind is ReplyKind.FUNCTION_ERROR
    return FunctionError.from_json(reply.body)


def test_the_handler_gets_the_decoded_event_and_its_result_is_json() -> None:
    reply = invoke(lambda event, context: {"got": event["n"] * 2}, b'{"n": 21}')
    assert reply.kind is ReplyKind.RESULT
    assert orjson.loads(reply.body) == {"got": 42}


def test_none_is_null_and_an_empty_payload_is_an_empty_event() -> None:
    seen: list[Any] = []
    reply = invoke(lambda event, context: seen.append(event), b"")
    assert (reply.body, seen) == (b"null", [{}])


def test_the_context_counts_down_from_the_timeout() -> None:
    clock = FakeClock(100.0)
    contexts: list[LambdaContext] = []
    invoke(lambda event, context: contexts.append(context), clock=clock)
    context = contexts[0]
    assert context.get_remaining_time_in_millis() == 3000
    clock.now = 101.25
    assert context.get_remaining_time_in_millis() == 1750
    clock.now = 200.0
    assert context.get_remaining_time_in_millis() == 0
    assert (context.aws_request_id, context.function_name, context.memory_limit_in_mb) == (
        "req-1",
        "orders",
        "512",
    )
    assert context.log_group_name == "/aws/lambda/orders"


def test_an_exception_is_a_function_error_without_runtime_frames() -> None:
    def handler(event: Any, context: Any) -> None:
        raise RuntimeError("downstream said no")

    error = error_of(invoke(handler))
    assert (error.error_type, error.error_message) == ("RuntimeError", "downstream said no")
    assert len(error.stack_trace) == 1 and "in handler" in error.stack_trace[0]


def test_an_unserialisable_result_is_a_marshal_error() -> None:
    error = error_of(invoke(lambda event, context: object()))
    assert error.error_type == "Runtime.MarshalError"
    assert error.error_message.startswith("Unable to marshal response:")


def test_an_event_that_is_not_json_is_an_unmarshal_error() -> None:
    error = error_of(invoke(lambda event, context: None, b"{not json"))
    assert error.error_type == "Runtime.UnmarshalError"


def test_decimals_and_non_string_keys_serialise_like_lambdas_encoder() -> None:
    reply = invoke(lambda event, context: {1: decimal.Decimal("2"), "f": decimal.Decimal("1.5")})
    assert orjson.loads(reply.body) == {"1": 2, "f": 1.5}


def test_system_exit_is_not_swallowed_so_the_environment_ends() -> None:
    def handler(event: Any, context: Any) -> None:
        raise SystemExit(2)

    with pytest.raises(SystemExit):
        invoke(handler)
