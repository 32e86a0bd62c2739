"""Entry point of one execution environment process: `python -m esm.worker.environment_main HANDLER`.

Takes over stdin/stdout as the channel to the worker (see protocol), points the handler's
stdout at the worker's stderr, imports the handler from the current directory, reports READY
(or INIT_ERROR) and then runs one invocation per request until stdin closes.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import time
import uuid
from typing import BinaryIO

from esm.worker import function_error
from esm.worker.handler_loader import HandlerLoadError, load_handler
from esm.worker.handler_spec import InvalidHandlerSpec, parse_handler_spec
from esm.worker.handler_trace import handler_trace
from esm.worker.invocation import run_invocation
from esm.worker.invocation_meta import InvocationMeta
from esm.worker.protocol import REQUEST_HEADER, Reply, ReplyKind, reply_header


class Channel:
    """The framed pipe pair to the worker."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer

    def receive(self) -> tuple[InvocationMeta, bytes] | None:
        """The next request, or None when the worker closed the pipe (time to exit)."""
        header = self._reader.read(REQUEST_HEADER.size)
        if len(header) < REQUEST_HEADER.size:
            return None
        meta_length, payload_length = REQUEST_HEADER.unpack(header)
        meta_json = self._reader.read(meta_length)
        payload = self._reader.read(payload_length)
        if len(meta_json) < meta_length or len(payload) < payload_length:
            return None
        return InvocationMeta.from_json(meta_json), payload

    def send(self, reply: Reply) -> None:
        self._writer.write(reply_header(reply))
        self._writer.write(reply.body)
        self._writer.flush()


def _take_over_stdio() -> Channel:
    """Keep private copies of stdin/stdout for the channel; give the handler /dev/null and stderr.

    A handler's print() then lands on the worker's stderr and can never corrupt the channel.
    """
    channel = Channel(os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb"))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return channel


def _log_stream_name() -> str:
    # The worker names each environment's stream (Lambda's form: date/[version]instance-id).
    return (
        os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        or f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
    )


def main(argv: list[str]) -> int:
    faulthandler.enable()  # a segfaulting handler leaves a traceback on the worker's stderr
    channel = _take_over_stdio()
    if len(argv) != 1:
        print(f"usage: python -m esm.worker.environment_main HANDLER (got {argv})", file=sys.stderr)
        return 2
    # Lambda resolves `app.handler` against the task directory; ours is the current directory.
    sys.path.insert(0, os.getcwd())
    try:
        handler = load_handler(parse_handler_spec(argv[0]))
    except HandlerLoadError as exc:
        channel.send(Reply(ReplyKind.INIT_ERROR, 0, exc.error.to_json()))
        return 1
    except InvalidHandlerSpec as exc:
        error = function_error.FunctionError(function_error.HANDLER_NOT_FOUND, str(exc))
        channel.send(Reply(ReplyKind.INIT_ERROR, 0, error.to_json()))
        return 1
    channel.send(Reply(ReplyKind.READY, 0, b""))
    log_stream_name = _log_stream_name()
    while (request := channel.receive()) is not None:
        meta, payload = request
        with handler_trace(meta):
            reply = run_invocation(handler, meta, payload, log_stream_name)
        channel.send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
