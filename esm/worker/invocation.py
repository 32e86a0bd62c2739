"""Running one invocation inside an execution environment: decode, call, encode, time it."""

from __future__ import annotations

import decimal
import time
from collections.abc import Callable

import orjson

from esm.worker import function_error
from esm.worker.context import LambdaContext
from esm.worker.function_error import FunctionError
from esm.worker.handler_loader import Handler
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.protocol import Reply, ReplyKind


def run_invocation(
    handler: Handler,
    meta: InvocationMeta,
    payload: bytes,
    log_stream_name: str,
    clock: Callable[[], float] = time.monotonic,
) -> Reply:
    """Call the handler with the decoded event; every failure of the user's code becomes a reply.

    BaseExceptions other than Exception (sys.exit, KeyboardInterrupt) are not caught: the
    environment ends, and the worker reports Runtime.ExitError and replaces it, as Lambda does.
    """
    started_ns = time.perf_counter_ns()
    try:
        event = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError as exc:
        return _error(
            FunctionError(function_error.UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}"), started_ns
        )
    context = LambdaContext(meta, log_stream_name, deadline=clock() + meta.timeout_ms / 1000, clock=clock)
    try:
        result = handler(event, context)
    except Exception as exc:
        return _error(function_error.from_exception(exc), started_ns)
    try:
        body = orjson.dumps(result, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        return _error(
            FunctionError(function_error.MARSHAL_ERROR, f"Unable to marshal response: {exc}"), started_ns
        )
    return Reply(ReplyKind.RESULT, _elapsed_us(started_ns), body)


def _json_default(value: object) -> object:
    # Lambda's runtime encodes Decimal (what boto3's DynamoDB deserializer returns) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error(error: FunctionError, started_ns: int) -> Reply:
    return Reply(ReplyKind.FUNCTION_ERROR, _elapsed_us(started_ns), error.to_json())


def _elapsed_us(started_ns: int) -> int:
    return (time.perf_counter_ns() - started_ns) // 1000
