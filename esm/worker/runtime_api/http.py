"""The little HTTP/1.1 the Runtime API needs: an incremental request parser and responses.

Runtime clients are HTTP clients of every kind (libcurl in AWS's C++ and Node clients, Python's
http.client, curl in a shell), so this reads what they send: Content-Length or chunked bodies,
`Expect: 100-continue`, keep-alive, requests sent back to back. A body is read whole, but only
up to `body_limit` bytes are kept: the rest is counted and dropped, so an oversized response is
measured and refused without holding it in memory. Pure: bytes in, requests out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEADER_BYTES = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.1 request we can read; the connection ends."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""
    # The body's full length, also when only the first `body_limit` bytes were kept.
    body_size: int = 0
    keep_alive: bool = True

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Body:
    """Reading one request's body: a fixed length, or chunks (size line, data, CRLF; trailers)."""

    request: Request
    chunked: bool
    state: str  # "data", "chunk_end", "size" or "trailers"
    remaining: int = 0  # bytes of the body (or of the current chunk) still to come
    kept: bytearray = field(default_factory=bytearray)


class RequestParser:
    """Feed it the bytes of one connection; it returns each request once complete.

    `feed` returns a list whose items are requests, or CONTINUE where the client waits for
    `100 Continue` before sending a body (the caller writes it).
    """

    def __init__(self, body_limit: int) -> None:
        self._limit = body_limit
        self._buffer = bytearray()
        self._body: _Body | None = None

    def feed(self, data: bytes) -> list[Request | bytes]:
        self._buffer += data
        out: list[Request | bytes] = []
        while True:
            if self._body is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > MAX_HEADER_BYTES:
                        raise BadRequest(f"request headers longer than {MAX_HEADER_BYTES} bytes")
                    return out
                request = parse_head(bytes(self._buffer[:end]))
                del self._buffer[: end + 4]
                self._body = _start_body(request)
                waits = self._body.chunked or self._body.remaining
                if waits and request.headers.get("expect", "").lower() == "100-continue":
                    out.append(CONTINUE)
            if not self._read_body(self._body):
                return out
            out.append(self._finish(self._body))
            self._body = None

    def _read_body(self, body: _Body) -> bool:
        """Take what the buffer holds of the body; True once it is complete."""
        while True:
            if body.state == "data":
                piece = self._buffer[: body.remaining]
                del self._buffer[: len(piece)]
                body.remaining -= len(piece)
                body.request.body_size += len(piece)
                room = self._limit + 1 - len(body.kept)  # one byte past the limit shows it is over
                if room > 0:
                    body.kept += piece[:room]
                if body.remaining:
                    return False
                if not body.chunked:
                    return True
                body.state = "chunk_end"
            if body.state == "chunk_end":
                if len(self._buffer) < 2:
                    return False
                if self._buffer[:2] != b"\r\n":
                    raise BadRequest("a chunk does not end with CRLF")
                del self._buffer[:2]
                body.state = "size"
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return False
            line = bytes(self._buffer[:line_end])
            del self._buffer[: line_end + 2]
            if body.state == "trailers":
                if not line:
                    return True
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(f"malformed chunk size {line[:40]!r}") from None
            if size == 0:
                body.state = "trailers"
            else:
                body.remaining, body.state = size, "data"

    @staticmethod
    def _finish(body: _Body) -> Request:
        body.request.body = bytes(body.kept)
        return body.request


def _start_body(request: Request) -> _Body:
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return _Body(request, chunked=True, state="size")
    length_text = request.headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequest(f"Content-Length {length_text[:40]!r} is not a number")
    return _Body(request, chunked=False, state="data", remaining=int(length_text))


def parse_head(head: bytes) -> Request:
    """The request line and headers (without the blank line that ends them)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not an HTTP/1.x request line: {lines[0][:200]!r}")
    method, path, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise BadRequest(f"malformed header line {line[:200]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Request(method=method, path=path, headers=headers, keep_alive=keep_alive)


def response_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    head = f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
