"""The Runtime API's answers, phase by phase and request by request (AWS's status codes and bodies)."""

from __future__ import annotations

import orjson
import pytest

from esm.wire import MAX_RESPONSE_BYTES
from esm.worker.function_error import FunctionError
from esm.worker.runtime_api.rules import Call, Phase, Route, decide, error_from_body, route_of

ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
V = "/2018-06-01"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", f"{V}/runtime/invocation/next", (Route.NEXT, "")),
        ("GET", f"{V}/runtime/invocation/next?x=1", (Route.NEXT, "")),
        ("POST", f"{V}/runtime/invocation/{ID}/response", (Route.RESPONSE, ID)),
        ("POST", f"{V}/runtime/invocation/{ID}/error", (Route.ERROR, ID)),
        ("POST", f"{V}/runtime/init/error", (Route.INIT_ERROR, "")),
        ("POST", f"{V}/runtime/invocation/next", (Route.UNKNOWN, "")),
        ("GET", f"{V}/runtime/invocation/{ID}/response", (Route.UNKNOWN, "")),
        ("GET", "/2020-01-01/runtime/invocation/next", (Route.UNKNOWN, "")),
        ("POST", f"{V}/runtime/invocation/{ID}/result", (Route.UNKNOWN, "")),
    ],
)
def test_routes(method: str, path: str, expected: tuple[Route, str]) -> None:
    assert route_of(method, path) == expected


def forbidden(phase: str, route: str) -> dict[str, str]:
    return {
        "errorMessage": f"State transition from {phase} to {route} failed for runtime. "
        "Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }


INVALID_ID = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
ACCEPTED = {"status": "OK"}
RESPONSE = Call(Route.RESPONSE, ID, b'{"ok":1}', 8)
ERROR = Call(Route.ERROR, ID, b'{"errorType":"ValueError","errorMessage":"boom"}', 48)


@pytest.mark.parametrize(
    ("phase", "call", "status", "body", "next_phase"),
    [
        # GET next: ends init, or asks for the next invocation after a response.
        (Phase.INITIALIZING, Call(Route.NEXT), 0, None, Phase.WAITING),
        (Phase.RESPONDED, Call(Route.NEXT), 0, None, Phase.WAITING),
        (Phase.WAITING, Call(Route.NEXT), 403, forbidden("Ready", "Ready"), Phase.WAITING),
        (Phase.INVOKING, Call(Route.NEXT), 403, forbidden("Running", "Ready"), Phase.INVOKING),
        (Phase.INIT_FAILED, Call(Route.NEXT), 403, forbidden("InitError", "Ready"), Phase.INIT_FAILED),
        # A response or error for the invocation in flight; anything else is refused.
        (Phase.INVOKING, RESPONSE, 202, ACCEPTED, Phase.RESPONDED),
        (Phase.INVOKING, ERROR, 202, ACCEPTED, Phase.RESPONDED),
        (Phase.INVOKING, Call(Route.RESPONSE, "other-id", b"{}", 2), 400, INVALID_ID, Phase.INVOKING),
        (Phase.INVOKING, Call(Route.ERROR, "other-id", b"{}", 2), 400, INVALID_ID, Phase.INVOKING),
        (Phase.INITIALIZING, RESPONSE, 400, INVALID_ID, Phase.INITIALIZING),
        (
            Phase.RESPONDED,
            RESPONSE,
            403,
            forbidden("RuntimeResponseSentState", "InvocationResponse"),
            Phase.RESPONDED,
        ),
        (
            Phase.RESPONDED,
            ERROR,
            403,
            forbidden("RuntimeResponseSentState", "InvocationErrorResponse"),
            Phase.RESPONDED,
        ),
        # init/error only while initialising.
        (Phase.INITIALIZING, Call(Route.INIT_ERROR, body=b"{}"), 202, ACCEPTED, Phase.INIT_FAILED),
        (Phase.INVOKING, Call(Route.INIT_ERROR), 403, forbidden("Running", "InitError"), Phase.INVOKING),
        (
            Phase.RESPONDED,
            Call(Route.INIT_ERROR),
            403,
            forbidden("RuntimeResponseSentState", "InitError"),
            Phase.RESPONDED,
        ),
        (
            Phase.INVOKING,
            Call(Route.UNKNOWN),
            404,
            {"errorMessage": "Unknown Runtime API resource", "errorType": "InvalidRequest"},
            Phase.INVOKING,
        ),
    ],
)
def test_answers(phase: Phase, call: Call, status: int, body: object, next_phase: Phase) -> None:
    decision = decide(phase, ID if phase in (Phase.INVOKING, Phase.RESPONDED) else "", call)
    assert decision.status == status
    assert decision.phase is next_phase
    assert decision.park == (status == 0)
    if body is not None:
        assert orjson.loads(decision.body) == body


def test_an_accepted_response_ends_the_invocation_with_its_body() -> None:
    decision = decide(Phase.INVOKING, ID, RESPONSE)
    assert (decision.response, decision.error) == (b'{"ok":1}', None)


def test_a_refused_response_leaves_the_invocation_running() -> None:
    decision = decide(Phase.INVOKING, ID, Call(Route.RESPONSE, "other", b"{}", 2))
    assert (decision.response, decision.error) == (None, None)


@pytest.mark.parametrize("route", [Route.RESPONSE, Route.ERROR])
def test_a_body_over_6_mb_is_413_and_fails_the_invocation(route: Route) -> None:
    size = MAX_RESPONSE_BYTES + 1
    decision = decide(Phase.INVOKING, ID, Call(route, ID, b"x" * 10, size))
    assert decision.status == 413
    assert orjson.loads(decision.body) == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    assert decision.phase is Phase.RESPONDED
    assert decision.error == FunctionError(
        "Function.ResponseSizeTooLarge",
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size (6291556 bytes).",
    )


def test_a_body_of_exactly_the_limit_is_accepted() -> None:
    decision = decide(Phase.INVOKING, ID, Call(Route.RESPONSE, ID, b"x", MAX_RESPONSE_BYTES))
    assert decision.status == 202


def test_init_error_carries_the_posted_error() -> None:
    body = b'{"errorMessage":"Unable to import module \'app\'","errorType":"Runtime.ImportModuleError"}'
    decision = decide(Phase.INITIALIZING, "", Call(Route.INIT_ERROR, body=body))
    assert decision.error == FunctionError("Runtime.ImportModuleError", "Unable to import module 'app'")


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        # awslambdaric: the type in the body, no header.
        (
            b'{"errorMessage":"boom","errorType":"ValueError","requestId":"r","stackTrace":["  File x\\n"]}',
            None,
            FunctionError("ValueError", "boom", ["  File x\n"]),
        ),
        # AWS's custom runtime tutorial: "Unhandled" in the header, the real type in the body.
        (
            b'{"errorMessage":"Error parsing event data.","errorType":"InvalidEventDataException"}',
            "Unhandled",
            FunctionError("InvalidEventDataException", "Error parsing event data."),
        ),
        # aws-lambda-ric (Node.js) names its trace `trace`.
        (
            b'{"errorType":"Error","errorMessage":"bad","trace":["Error: bad","    at handler"]}',
            "Error",
            FunctionError("Error", "bad", ["Error: bad", "    at handler"]),
        ),
        # Only the header says what it was.
        (b'{"errorMessage":"m"}', "Runtime.Custom", FunctionError("Runtime.Custom", "m")),
        (b"{}", None, FunctionError("Runtime.Unknown", "")),
        (b"", None, FunctionError("Runtime.Unknown", "")),
        # Not an ErrorRequest: nothing is lost, the body becomes the message.
        (b"plain text failure", None, FunctionError("Runtime.Unknown", "plain text failure")),
        (b"[1, 2]", "Unhandled", FunctionError("Unhandled", "[1, 2]")),
        (b'{"errorType": 5, "errorMessage": {"a": 1}}', None, FunctionError("Runtime.Unknown", "{'a': 1}")),
        (b'{"errorType":"E","errorMessage":"m","stackTrace":"one string"}', None, FunctionError("E", "m")),
    ],
)
def test_error_bodies(body: bytes, header: str | None, expected: FunctionError) -> None:
    assert error_from_body(Call(Route.ERROR, ID, body, len(body), header)) == expected
