"""Execution environments' output in the worker's log, as CloudWatch shows it: whole lines, each
`<time>\\t<request id>\\t<text>`.

Every environment writes into a pipe of its own; the worker reads it on its event loop and writes
each line with one write to its stderr, so lines from concurrent environments never interleave
mid-line. A line is labelled with the request id running in its environment when it was read;
before an invocation ends the pipe is read dry (`drain`), so what the handler wrote before it
answered is labelled with its invocation, not the next one. Lines written during init have an
empty request id, as in Lambda. A line a runtime already labelled (aws-lambda-ric writes
`<time>\\t<request id>\\t...`) is kept as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

# Lambda splits log events past 256 KB; a line longer than this is written in pieces.
MAX_LINE_BYTES = 256 * 1024
_READ_BYTES = 64 * 1024
_ALREADY_LABELLED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\t")


def timestamp(epoch_s: float) -> str:
    """ISO-8601 UTC with milliseconds, as Lambda's runtimes write it: 2024-03-01T12:30:45.678Z."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def label(text: str, request_id: str, epoch_s: float) -> str:
    """One log line for `text`: time and request id in front, unless the runtime already put them."""
    if request_id and _ALREADY_LABELLED.match(text) and f"\t{request_id}\t" in text[:80]:
        return text
    return f"{timestamp(epoch_s)}\t{request_id}\t{text}"


def split_lines(pending: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines in `pending + data` (a CR inside a line ends a line too: runtimes use it to
    keep a multi-line message in one log event) and what is left without its newline."""
    buffer = pending + data
    *complete, rest = buffer.split(b"\n")
    lines: list[bytes] = []
    for line in complete:
        lines.extend(piece for piece in line.rstrip(b"\r").split(b"\r"))
    while len(rest) > MAX_LINE_BYTES:
        lines.append(rest[:MAX_LINE_BYTES])
        rest = rest[MAX_LINE_BYTES:]
    return lines, rest


class LogSink:
    """The worker's stderr; every write holds whole lines.

    An invocation's START line is held until its first output line or its END, and written in
    the same write: one write fewer per invocation (each wakes whatever reads the log).
    """

    def __init__(self, fd: int = 2, clock: Callable[[], float] = time.time) -> None:
        self._fd = fd
        self._clock = clock
        self._held: dict[str, str] = {}

    def begin(self, request_id: str, start_line: str) -> None:
        self._held[request_id] = start_line

    def finish(self, request_id: str, lines: Iterable[str]) -> None:
        """The invocation's last lines (END, REPORT), after its START if that is still held."""
        start = self._held.pop(request_id, None)
        self.write([start, *lines] if start is not None else lines)

    def now(self) -> float:
        return self._clock()

    def write(self, lines: Iterable[str]) -> None:
        text = "\n".join(lines)
        if not text:
            return
        data = (text + "\n").encode("utf-8", errors="replace")
        with contextlib.suppress(OSError):  # a closed stderr must not take the worker down
            while data:
                written = os.write(self._fd, data)
                data = data[written:]

    def labelled(self, texts: Iterable[str], request_id: str) -> None:
        now = self._clock()
        lines = [label(text, request_id, now) for text in texts]
        start = self._held.pop(request_id, None)
        self.write([start, *lines] if start is not None else lines)


class OutputPump:
    """Reads one environment's output pipe into the sink; `request_id()` names the invocation now."""

    def __init__(
        self, fd: int, sink: LogSink, request_id: Callable[[], str], seen: Callable[[str], None] | None = None
    ) -> None:
        self._fd = fd
        self._sink = sink
        self._request_id = request_id
        self._seen = seen
        self._pending = b""
        self._open = True
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self.drain)

    def drain(self) -> None:
        """Read everything in the pipe now and write its complete lines."""
        while self._open:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            lines, self._pending = split_lines(self._pending, data)
            if lines:
                self._write([line.decode("utf-8", errors="replace") for line in lines])

    def close(self) -> None:
        """Stop reading; a last line without its newline is written as it is."""
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        if self._pending:
            self._write([self._pending.decode("utf-8", errors="replace")])
            self._pending = b""

    def _write(self, texts: list[str]) -> None:
        self._sink.labelled(texts, self._request_id())
        if self._seen is not None:
            for text in texts:
                self._seen(text)
