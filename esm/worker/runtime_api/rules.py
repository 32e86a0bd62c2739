"""What the Runtime API answers, as a pure function of the environment's phase and the request.

One environment runs one invocation at a time; its runtime moves through these phases:

    INITIALIZING --GET next--> WAITING --invocation handed over--> INVOKING(id)
    INVOKING(id) --POST id/response | id/error--> RESPONDED(id) --GET next--> WAITING
    INITIALIZING --POST init/error--> INIT_FAILED

Status codes and error bodies are AWS's (the Runtime API's OpenAPI description and its runtime
interface emulator): 202 `{"status": "OK"}` for an accepted response or error; 400
`InvalidRequestID` for a request id that is not the invocation in flight; 403
`InvalidStateTransition` for a call the phase does not allow (a second response for one id, init
error after init, a second `next` while one waits); 413 `RequestEntityTooLarge` for a response
over 6 MB, which also fails the invocation with `Function.ResponseSizeTooLarge`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import orjson

from esm.wire import MAX_RESPONSE_BYTES, RESPONSE_TOO_LARGE, response_too_large_message
from esm.worker.function_error import FunctionError

API_VERSION = "2018-06-01"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Lambda's name for a function error whose type the runtime did not give.
UNKNOWN_ERROR_TYPE = "Runtime.Unknown"

_INVOCATION_PATH = re.compile(rf"^/{API_VERSION}/runtime/invocation/(?P<id>[^/]+)/(?P<what>response|error)$")
_NEXT_PATH = f"/{API_VERSION}/runtime/invocation/next"
_INIT_ERROR_PATH = f"/{API_VERSION}/runtime/init/error"


class Phase(enum.Enum):
    INITIALIZING = "Started"
    WAITING = "Ready"
    INVOKING = "Running"
    RESPONDED = "RuntimeResponseSentState"
    INIT_FAILED = "InitError"


class Route(enum.Enum):
    NEXT = "Ready"
    RESPONSE = "InvocationResponse"
    ERROR = "InvocationErrorResponse"
    INIT_ERROR = "InitError"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Call:
    """One request as the rules see it: the route, the request id in its path, and its body."""

    route: Route
    request_id: str = ""
    body: bytes = b""
    body_size: int = 0
    error_type_header: str | None = None


@dataclass(frozen=True)
class Decision:
    """The answer and what it does: the next phase, and how the invocation (or init) ended, if it did.

    `status` 0 with `park` means: hold the request until an invocation is handed over.
    """

    status: int
    body: bytes
    phase: Phase
    park: bool = False
    response: bytes | None = None
    error: FunctionError | None = None


def route_of(method: str, path: str) -> tuple[Route, str]:
    """The route of a request line and the request id in its path ("" if none)."""
    path = path.split("?", 1)[0]
    if method == "GET" and path == _NEXT_PATH:
        return Route.NEXT, ""
    if method == "POST" and path == _INIT_ERROR_PATH:
        return Route.INIT_ERROR, ""
    if method == "POST" and (match := _INVOCATION_PATH.match(path)):
        return (Route.RESPONSE if match["what"] == "response" else Route.ERROR), match["id"]
    return Route.UNKNOWN, ""


def decide(phase: Phase, current_id: str, call: Call) -> Decision:
    """The Runtime API's answer to `call` in `phase`, with `current_id` the invocation handed over last."""
    if call.route is Route.UNKNOWN:
        return Decision(404, _error_body("InvalidRequest", "Unknown Runtime API resource"), phase)
    if call.route is Route.NEXT:
        if phase in (Phase.INITIALIZING, Phase.RESPONDED):
            return Decision(0, b"", Phase.WAITING, park=True)
        return _forbidden(phase, call.route)
    if call.route is Route.INIT_ERROR:
        if phase is not Phase.INITIALIZING:
            return _forbidden(phase, call.route)
        return Decision(202, _ACCEPTED, Phase.INIT_FAILED, error=error_from_body(call))
    # A response or an error for an invocation.
    if not call.request_id or call.request_id != current_id:
        return Decision(400, _error_body("InvalidRequestID", "Invalid request ID"), phase)
    if phase is not Phase.INVOKING:
        return _forbidden(phase, call.route)
    if call.body_size > MAX_RESPONSE_BYTES:
        too_large = FunctionError(RESPONSE_TOO_LARGE, response_too_large_message(call.body_size))
        body = _error_body(
            "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
        )
        return Decision(413, body, Phase.RESPONDED, error=too_large)
    if call.route is Route.RESPONSE:
        return Decision(202, _ACCEPTED, Phase.RESPONDED, response=call.body)
    return Decision(202, _ACCEPTED, Phase.RESPONDED, error=error_from_body(call))


def error_from_body(call: Call) -> FunctionError:
    """The function error a runtime posted: `{errorMessage, errorType, stackTrace}`.

    The type comes from the body (AWS's Python client sends no header), else the
    Lambda-Runtime-Function-Error-Type header, else Runtime.Unknown. Node's client names the trace
    `trace`. A body that is not such an object is kept whole as the message.
    """
    try:
        parsed = orjson.loads(call.body) if call.body else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        text = call.body.decode("utf-8", errors="replace")
        return FunctionError(call.error_type_header or UNKNOWN_ERROR_TYPE, text)
    error_type = parsed.get("errorType")
    if not isinstance(error_type, str) or not error_type:
        error_type = call.error_type_header or UNKNOWN_ERROR_TYPE
    message = parsed.get("errorMessage")
    trace = parsed.get("stackTrace", parsed.get("trace"))
    return FunctionError(
        error_type=error_type,
        error_message=message if isinstance(message, str) else ("" if message is None else str(message)),
        stack_trace=[str(line) for line in trace] if isinstance(trace, list) else [],
    )


_ACCEPTED = orjson.dumps({"status": "OK"})


def _error_body(error_type: str, message: str) -> bytes:
    return orjson.dumps({"errorMessage": message, "errorType": error_type})


def _forbidden(phase: Phase, route: Route) -> Decision:
    message = (
        f"State transition from {phase.value} to {route.value} failed for runtime. "
        "Error: State transition is not allowed"
    )
    return Decision(403, _error_body("InvalidStateTransition", message), phase)
