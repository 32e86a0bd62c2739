"""The Runtime API server over real loopback HTTP: http.client (as AWS's Python client uses for
init errors) and raw sockets for what clients such as curl send (chunked bodies, 100-continue)."""

from __future__ import annotations

import asyncio
import http.client
import socket
from collections.abc import AsyncIterator

import orjson
import pytest

from esm.wire import MAX_RESPONSE_BYTES
from esm.worker.function_error import FunctionError
from esm.worker.runtime_api.server import Invocation, InvocationResult, RuntimeApiServer

V = "/2018-06-01/runtime"


def invocation(request_id: str = "req-1", payload: bytes = b'{"n":1}') -> Invocation:
    return Invocation(
        request_id, 1_700_000_003_000, "arn:aws:lambda:local:000000000000:function:f", "Root=1-a", payload
    )


@pytest.fixture
async def api() -> AsyncIterator[tuple[RuntimeApiServer, str, list[str]]]:
    logged: list[str] = []
    server = RuntimeApiServer(logged.append)
    address = await server.start()
    yield server, address, logged
    await server.close()


def call(
    address: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    connection = http.client.HTTPConnection(address, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


async def acall(
    address: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(call, address, method, path, body, headers)


async def start_invocation(
    server: RuntimeApiServer, address: str, inv: Invocation
) -> asyncio.Future[InvocationResult]:
    nxt = asyncio.create_task(acall(address, "GET", f"{V}/invocation/next"))
    await asyncio.wait_for(server.initialised, 5)
    result = server.hand_over(inv)
    status, _, body = await nxt
    assert status == 200 and body == inv.payload
    return result


async def test_next_delivers_the_event_with_lambdas_headers(
    api: tuple[RuntimeApiServer, str, list[str]],
) -> None:
    server, address, _ = api
    nxt = asyncio.create_task(acall(address, "GET", f"{V}/invocation/next"))
    assert await asyncio.wait_for(server.initialised, 5) is None
    result = server.hand_over(invocation())
    status, headers, body = await nxt
    assert status == 200 and body == b'{"n":1}'
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1700000003000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:local:000000000000:function:f"
    assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-a"
    assert headers["Content-Type"] == "application/json"
    status, _, body = await acall(address, "POST", f"{V}/invocation/req-1/response", b'{"ok":true}')
    assert (status, orjson.loads(body)) == (202, {"status": "OK"})
    assert (await result) == InvocationResult(b'{"ok":true}')


async def test_an_invocation_handed_over_before_next_waits_for_it(
    api: tuple[RuntimeApiServer, str, list[str]],
) -> None:
    server, address, _ = api
    first = await start_invocation(server, address, invocation("a"))
    await acall(address, "POST", f"{V}/invocation/a/response", b"1")
    assert (await first).response == b"1"
    second = server.hand_over(invocation("b", b'{"n":2}'))  # the runtime has not asked yet
    status, headers, body = await acall(address, "GET", f"{V}/invocation/next")
    assert (status, headers["Lambda-Runtime-Aws-Request-Id"], body) == (200, "b", b'{"n":2}')
    await acall(address, "POST", f"{V}/invocation/b/error", b'{"errorType":"E","errorMessage":"m"}')
    assert (await second).error == FunctionError("E", "m")


@pytest.mark.parametrize(
    ("path", "body", "status", "error_type"),
    [
        (f"{V}/invocation/wrong/response", b"{}", 400, "InvalidRequestID"),
        (f"{V}/invocation/wrong/error", b"{}", 400, "InvalidRequestID"),
        (f"{V}/init/error", b"{}", 403, "InvalidStateTransition"),
        (f"{V}/invocation/req-1", b"{}", 404, "InvalidRequest"),
    ],
)
async def test_refused_calls_leave_the_invocation_running(
    api: tuple[RuntimeApiServer, str, list[str]], path: str, body: bytes, status: int, error_type: str
) -> None:
    server, address, logged = api
    result = await start_invocation(server, address, invocation())
    answer, _, reply = await acall(address, "POST", path, body)
    assert (answer, orjson.loads(reply)["errorType"]) == (status, error_type)
    assert not result.done()
    assert any(str(status) in line for line in logged)
    assert (await acall(address, "POST", f"{V}/invocation/req-1/response", b"7"))[0] == 202
    assert (await result).response == b"7"


async def test_a_second_response_for_one_id_is_forbidden(
    api: tuple[RuntimeApiServer, str, list[str]],
) -> None:
    server, address, _ = api
    result = await start_invocation(server, address, invocation())
    assert (await acall(address, "POST", f"{V}/invocation/req-1/response", b"1"))[0] == 202
    status, _, body = await acall(address, "POST", f"{V}/invocation/req-1/response", b"2")
    assert (status, orjson.loads(body)["errorType"]) == (403, "InvalidStateTransition")
    assert (await result).response == b"1"


async def test_a_response_over_6_mb_is_413_and_the_invocation_fails(
    api: tuple[RuntimeApiServer, str, list[str]],
) -> None:
    server, address, _ = api
    result = await start_invocation(server, address, invocation())
    big = b"x" * (MAX_RESPONSE_BYTES + 10)
    status, _, body = await acall(address, "POST", f"{V}/invocation/req-1/response", big)
    assert (status, orjson.loads(body)["errorType"]) == (413, "RequestEntityTooLarge")
    error = (await result).error
    assert error is not None and error.error_type == "Function.ResponseSizeTooLarge"


async def test_init_error_is_what_initialised_reports(api: tuple[RuntimeApiServer, str, list[str]]) -> None:
    server, address, _ = api
    body = b'{"errorMessage":"Unable to import module","errorType":"Runtime.ImportModuleError"}'
    status, _, _ = await acall(
        address,
        "POST",
        f"{V}/init/error",
        body,
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert status == 202
    assert await server.initialised == FunctionError("Runtime.ImportModuleError", "Unable to import module")
    assert (await acall(address, "GET", f"{V}/invocation/next"))[0] == 403


def raw_exchange(address: str, data: bytes, read_until: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while read_until not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


async def test_chunked_body_after_100_continue(api: tuple[RuntimeApiServer, str, list[str]]) -> None:
    server, address, _ = api
    result = await start_invocation(server, address, invocation())
    request = (
        f"POST {V}/invocation/req-1/response HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
    ).encode()
    reply = await asyncio.to_thread(raw_exchange, address, request, b'"OK"}')
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n")
    assert (await result).response == b"hello world"


async def test_a_malformed_request_is_400(api: tuple[RuntimeApiServer, str, list[str]]) -> None:
    _, address, logged = api
    reply = await asyncio.to_thread(raw_exchange, address, b"NONSENSE\r\n\r\n", b"}")
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b'"errorType":"InvalidRequestFormat"' in reply
    assert any("malformed" in line for line in logged)


async def test_a_runtime_that_hangs_up_on_next_gets_the_invocation_on_its_next_next(
    api: tuple[RuntimeApiServer, str, list[str]],
) -> None:
    server, address, _ = api
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"GET {V}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.wait_for(server.initialised, 5)
    sock.close()  # e.g. curl --max-time in a shell loop
    async with asyncio.timeout(5):
        while server._parked is not None:  # until the server saw the hang-up
            await asyncio.sleep(0.001)
    result = server.hand_over(invocation())
    status, headers, _ = await acall(address, "GET", f"{V}/invocation/next")
    assert (status, headers["Lambda-Runtime-Aws-Request-Id"]) == (200, "req-1")
    await acall(address, "POST", f"{V}/invocation/req-1/response", b"{}")
    assert (await result).response == b"{}"
