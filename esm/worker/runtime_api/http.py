"""The little HTTP/1.1 the Runtime API needs, over asyncio streams: read one request, write one response.

Runtime clients are HTTP clients of every kind (libcurl in AWS's C++ and Node clients, Python's
http.client, curl in a shell), so this reads what they send: Content-Length or chunked bodies,
`Expect: 100-continue`, keep-alive. A body is read whole, but only up to `body_limit` bytes are
kept: the rest is counted and dropped, so an oversized response is measured and refused without
holding it in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEADER_BYTES = 64 * 1024
_CHUNK_READ = 256 * 1024


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


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body_limit: int
) -> Request | None:
    """The next request on the connection, or None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("the connection closed in the middle of a request's headers") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(f"request headers longer than {MAX_HEADER_BYTES} bytes") from None
    request = _parse_head(head)
    if request.header("expect") == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        await _read_body(reader, request, body_limit)
    except asyncio.IncompleteReadError:
        raise BadRequest("the connection closed before the request body was complete") from None
    return request


def _parse_head(head: bytes) -> Request:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not an HTTP/1.x request line: {lines[0][:200]!r}")
    method, path, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise BadRequest(f"malformed header line {line[:200]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Request(method=method, path=path, headers=headers, keep_alive=keep_alive)


async def _read_body(reader: asyncio.StreamReader, request: Request, body_limit: int) -> None:
    kept = bytearray()
    size = 0

    def take(data: bytes) -> None:
        nonlocal size
        room = body_limit + 1 - len(kept)  # one byte past the limit shows the body is over it
        if room > 0:
            kept.extend(data[:room])
        size += len(data)

    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                chunk_size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(f"malformed chunk size {size_line[:40]!r}") from None
            if chunk_size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers: nothing here uses them
                break
            await _read_exactly_into(reader, chunk_size, take)
            await reader.readexactly(2)
    else:
        length_text = request.headers.get("content-length", "0")
        if not length_text.isdigit():
            raise BadRequest(f"Content-Length {length_text[:40]!r} is not a number")
        await _read_exactly_into(reader, int(length_text), take)
    request.body = bytes(kept)
    request.body_size = size


async def _read_exactly_into(
    reader: asyncio.StreamReader, length: int, take: Callable[[bytes], None]
) -> None:
    while length > 0:
        data = await reader.readexactly(min(length, _CHUNK_READ))
        take(data)
        length -= len(data)


def response_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body
