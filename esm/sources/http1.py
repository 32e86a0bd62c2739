"""One HTTP/1.1 request and its answer over a connected socket, for esm's lean GetRecords client.

The standard library's http.client parses every answer's headers with the email package, which
costs most of an idle GetRecords' CPU (measured: ~60 % of ~430 us a call against kinesis-mock).
The JSON APIs answer a POST with a status line, a few headers and a Content-Length (or chunked)
body, and that is all this reads: `ResponseParser` takes the bytes as they come (pure), and
`exchange` sends a request in one write and feeds the parser until the answer is complete.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

RECEIVE_BYTES = 65536
_MAX_HEAD_BYTES = 64 * 1024


class ProtocolError(Exception):
    """The peer's bytes are not an HTTP/1.1 answer this reader understands."""


class ConnectionClosed(ProtocolError):
    """The connection ended before the answer was complete. `started`: some of it had come."""

    def __init__(self, started: bool) -> None:
        super().__init__("the connection closed before the answer was complete")
        self.started = started


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes

    @property
    def will_close(self) -> bool:
        """The server closes the connection after this answer."""
        return self.headers.get("connection", "").lower() == "close"


def request_bytes(method: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The whole request, ready for one write (Content-Length added)."""
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ResponseParser:
    """Reads one answer from the bytes given to `feed`, in whatever pieces they arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._status = 0
        self._headers: dict[str, str] | None = None
        self._length: int | None = None  # body bytes expected (Content-Length framing)
        self._chunked = False
        self._to_close = False  # no framing: the body is everything until the connection closes
        self._body = bytearray()
        self.response: Response | None = None

    @property
    def started(self) -> bool:
        return bool(self._buffer) or self._headers is not None

    def feed(self, data: bytes) -> bool:
        """Takes more bytes; True once the answer is complete (then `response` is set)."""
        if self.response is not None:
            raise ProtocolError("bytes after a complete answer")
        self._buffer += data
        if self._headers is None and not self._read_head():
            return False
        if self._chunked:
            return self._read_chunks()
        if self._to_close:
            self._body += self._buffer
            self._buffer.clear()
            return False
        assert self._length is not None
        if len(self._buffer) < self._length:
            return False
        if len(self._buffer) > self._length:
            raise ProtocolError("more bytes than the answer's Content-Length")
        self._body = self._buffer
        return self._complete()

    def closed(self) -> bool:
        """The connection ended: True when that completes an answer without framing."""
        if self._to_close and self.response is None:
            return self._complete()
        return False

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD_BYTES:
                raise ProtocolError("an answer's headers longer than 64 KiB")
            return False
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        version, _, rest = lines[0].partition(" ")
        code = rest.partition(" ")[0]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        self._status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"a header line without a colon: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        self._headers = headers
        if 100 <= self._status < 200:
            raise ProtocolError(f"an interim answer ({self._status}) to a request that asked for none")
        if self._status in (204, 304):
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise ProtocolError(f"Content-Length {headers['content-length']!r}") from None
            if self._length < 0:
                raise ProtocolError(f"Content-Length {self._length}")
        else:
            self._to_close = True
        return True

    def _read_chunks(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n")
            if end < 0:
                return False
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"a chunk size {size_text[:20]!r}") from None
            if size == 0:
                # The last chunk, then trailers (ignored) up to an empty line.
                trailer_end = self._buffer.find(b"\r\n\r\n", end)
                if trailer_end < 0:
                    return False
                if trailer_end + 4 != len(self._buffer):
                    raise ProtocolError("bytes after the last chunk")
                self._buffer.clear()
                return self._complete()
            if len(self._buffer) < end + 2 + size + 2:
                return False
            start = end + 2
            self._body += self._buffer[start : start + size]
            if self._buffer[start + size : start + size + 2] != b"\r\n":
                raise ProtocolError("a chunk not followed by CRLF")
            del self._buffer[: start + size + 2]

    def _complete(self) -> bool:
        assert self._headers is not None
        self.response = Response(self._status, self._headers, bytes(self._body))
        return True


def exchange(sock: socket.socket, request: bytes) -> Response:
    """Sends `request` and reads its answer. Raises TimeoutError (the socket's timeout), OSError,
    or ConnectionClosed / ProtocolError."""
    sock.sendall(request)
    parser = ResponseParser()
    while True:
        data = sock.recv(RECEIVE_BYTES)
        if not data:
            if parser.closed():
                break
            raise ConnectionClosed(parser.started)
        if parser.feed(data):
            break
    assert parser.response is not None
    return parser.response
