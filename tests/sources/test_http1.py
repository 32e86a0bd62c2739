"""esm.sources.http1: the answers the parser reads (by table, in every split the bytes may come
in), the ones it refuses, and one exchange over a real socket pair."""

from __future__ import annotations

import socket
import threading

import pytest

from esm.sources.http1 import (
    ConnectionClosed,
    ProtocolError,
    Response,
    ResponseParser,
    exchange,
    request_bytes,
)

OK_JSON = b'{"Records":[],"NextShardIterator":"it-2","MillisBehindLatest":0}'


def _parse(raw: bytes, piece: int) -> Response | None:
    """`raw` fed `piece` bytes at a time, then the connection closed; None if incomplete."""
    parser = ResponseParser()
    for start in range(0, len(raw), piece):
        if parser.feed(raw[start : start + piece]):
            assert start + piece >= len(raw), "complete before every byte was read"
            return parser.response
    return parser.response if parser.closed() else None


@pytest.mark.parametrize(
    ("raw", "status", "headers", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: "
            + str(len(OK_JSON)).encode()
            + b"\r\n\r\n"
            + OK_JSON,
            200,
            {"content-type": "application/x-amz-json-1.1", "content-length": str(len(OK_JSON))},
            OK_JSON,
        ),
        # An error answer: the code in a header, names in any case, value spaces trimmed.
        (
            b"HTTP/1.1 400 Bad Request\r\nX-Amzn-ErrorType:  ExpiredIteratorException:http://x \r\n"
            b"content-length: 2\r\n\r\n{}",
            400,
            {"x-amzn-errortype": "ExpiredIteratorException:http://x", "content-length": "2"},
            b"{}",
        ),
        # Chunked, with a chunk extension and a trailer.
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            200,
            {"transfer-encoding": "chunked"},
            b"hello world",
        ),
        # Empty bodies: Content-Length 0, and 204 without a length.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, {"content-length": "0"}, b""),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, {}, b""),
        # No framing at all: the body runs until the server closes (HTTP/1.0 style).
        (b"HTTP/1.0 500 Oops\r\nConnection: close\r\n\r\nbroken", 500, {"connection": "close"}, b"broken"),
    ],
)
@pytest.mark.parametrize("piece", [1, 2, 7, 64, 100_000])
def test_answers_are_read_in_any_split(
    raw: bytes, status: int, headers: dict[str, str], body: bytes, piece: int
) -> None:
    assert _parse(raw, piece) == Response(status, headers, body)


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
    ],
)
def test_what_is_not_an_answer_is_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        _parse(raw, len(raw))


@pytest.mark.parametrize(
    ("raw", "complete"),
    [
        (b"", False),
        (b"HTTP/1.1 200 OK\r\nContent-Len", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab", True),
    ],
)
def test_an_answer_is_complete_only_with_all_its_bytes(raw: bytes, complete: bool) -> None:
    assert (_parse(raw, 3) is not None) is complete


@pytest.mark.parametrize(
    ("connection", "closes"), [("close", True), ("Close", True), ("keep-alive", False), (None, False)]
)
def test_will_close(connection: str | None, closes: bool) -> None:
    headers = {} if connection is None else {"connection": connection}
    assert Response(200, headers, b"").will_close is closes


def test_a_request_is_one_write_with_its_length() -> None:
    assert request_bytes("POST", "/", {"host": "h:1", "x-amz-target": "K.GetRecords"}, b"{}") == (
        b"POST / HTTP/1.1\r\nhost: h:1\r\nx-amz-target: K.GetRecords\r\ncontent-length: 2\r\n\r\n{}"
    )


def _serve(server: socket.socket, answers: list[bytes]) -> None:
    """Reads a request per answer, sends the answer, then closes."""
    with server:
        for answer in answers:
            server.recv(65536)
            server.sendall(answer)


def test_an_exchange_over_a_socket_and_a_close_midway() -> None:
    ours, theirs = socket.socketpair()
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server = threading.Thread(target=_serve, args=(theirs, [answer, answer[:20]]))
    server.start()
    try:
        with ours:
            ours.settimeout(5)
            assert exchange(ours, request_bytes("POST", "/", {}, b"{}")).body == b"{}"
            with pytest.raises(ConnectionClosed) as closed:
                exchange(ours, request_bytes("POST", "/", {}, b"{}"))
            assert closed.value.started
    finally:
        server.join()
