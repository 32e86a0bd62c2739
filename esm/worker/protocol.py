"""Framing between the worker and its execution environments, over the environment's stdin/stdout.

Request (worker -> environment): header (meta length, payload length), InvocationMeta JSON, the
raw event bytes. Reply (environment -> worker): header (kind, handler duration in microseconds,
body length), body. The first reply after start is READY or INIT_ERROR; then one RESULT or
FUNCTION_ERROR per request. RESULT's body is the return value's JSON; the error kinds carry a
FunctionError's JSON. Stdlib + orjson only: the environment imports this at start-up.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

REQUEST_HEADER = struct.Struct("<II")
REPLY_HEADER = struct.Struct("<BQI")


class ReplyKind(IntEnum):
    READY = 1
    INIT_ERROR = 2
    RESULT = 3
    FUNCTION_ERROR = 4


@dataclass(frozen=True)
class Reply:
    kind: ReplyKind
    duration_us: int
    body: bytes


def request_header(meta_json: bytes, payload: bytes) -> bytes:
    return REQUEST_HEADER.pack(len(meta_json), len(payload))


def reply_header(reply: Reply) -> bytes:
    return REPLY_HEADER.pack(reply.kind, reply.duration_us, len(reply.body))


def parse_reply_header(header: bytes) -> tuple[ReplyKind, int, int]:
    """(kind, duration_us, body length); a kind byte that is not a ReplyKind is a ValueError."""
    kind, duration_us, body_length = REPLY_HEADER.unpack(header)
    return ReplyKind(kind), duration_us, body_length
