"""The incremental HTTP/1.1 request parser, fed whole and byte by byte."""

from __future__ import annotations

import pytest

from esm.worker.runtime_api.http import CONTINUE, BadRequest, Request, RequestParser, response_bytes

V = "/2018-06-01/runtime"
GET_NEXT = f"GET {V}/invocation/next HTTP/1.1\r\nHost: x\r\nUser-Agent: curl\r\n\r\n".encode()
POST = f"POST {V}/invocation/r1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".encode()
CHUNKED = (
    f"POST {V}/invocation/r1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
).encode()
EXPECT = f"POST {V}/init/error HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{{}}".encode()


def feed_all(data: bytes, limit: int = 100, byte_by_byte: bool = False) -> list[Request | bytes]:
    parser = RequestParser(limit)
    if not byte_by_byte:
        return parser.feed(data)
    out: list[Request | bytes] = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    return out


@pytest.mark.parametrize("byte_by_byte", [False, True])
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (GET_NEXT, [("GET", f"{V}/invocation/next", b"", 0)]),
        (POST, [("POST", f"{V}/invocation/r1/response", b"hello", 5)]),
        (CHUNKED, [("POST", f"{V}/invocation/r1/response", b"hello world", 11)]),
        (EXPECT, [CONTINUE, ("POST", f"{V}/init/error", b"{}", 2)]),
        # Back to back on one connection.
        (
            GET_NEXT + POST + GET_NEXT,
            [
                ("GET", f"{V}/invocation/next", b"", 0),
                ("POST", f"{V}/invocation/r1/response", b"hello", 5),
                ("GET", f"{V}/invocation/next", b"", 0),
            ],
        ),
    ],
)
def test_requests(data: bytes, expected: list[object], byte_by_byte: bool) -> None:
    got = [
        item if isinstance(item, bytes) else (item.method, item.path, item.body, item.body_size)
        for item in feed_all(data, byte_by_byte=byte_by_byte)
    ]
    assert got == expected


def test_a_body_over_the_limit_is_counted_not_kept() -> None:
    body = b"x" * 1000
    data = f"POST /p HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    [request] = feed_all(data, limit=10)
    assert isinstance(request, Request)
    assert (len(request.body), request.body_size) == (11, 1000)


def test_an_incomplete_request_waits_for_more() -> None:
    parser = RequestParser(100)
    assert parser.feed(POST[:-2]) == []
    [request] = parser.feed(POST[-2:])
    assert isinstance(request, Request) and request.body == b"hello"


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive(data: bytes, keep_alive: bool) -> None:
    [request] = feed_all(data)
    assert isinstance(request, Request) and request.keep_alive is keep_alive


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"NONSENSE\r\n\r\n", "not an HTTP/1.x request line"),
        (b"GET / SPDY/3\r\n\r\n", "not an HTTP/1.x request line"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "Content-Length '-5' is not a number"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX", "a chunk does not end with CRLF"),
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 70_000, "request headers longer than"),
    ],
)
def test_malformed(data: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        feed_all(data)


def test_response_bytes() -> None:
    assert response_bytes(202, b'{"status":"OK"}', {"Content-Type": "application/json"}) == (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
        b'{"status":"OK"}'
    )
