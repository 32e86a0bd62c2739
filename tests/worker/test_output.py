"""Environment output as whole labelled lines (pure parts, then a pump over a real pipe)."""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest

from esm.worker.output import MAX_LINE_BYTES, LogSink, OutputPump, label, split_lines, timestamp

NOW = 1_709_296_245.678


def test_timestamp() -> None:
    assert timestamp(NOW) == "2024-03-01T12:30:45.678Z"


@pytest.mark.parametrize(
    ("text", "request_id", "expected"),
    [
        ("hello", "r-1", "2024-03-01T12:30:45.678Z\tr-1\thello"),
        ("during init", "", "2024-03-01T12:30:45.678Z\t\tduring init"),
        # aws-lambda-ric labels its console lines itself: kept as they are.
        ("2024-03-01T12:30:40.000Z\tr-1\tINFO\thi", "r-1", "2024-03-01T12:30:40.000Z\tr-1\tINFO\thi"),
        # ... but not a line that only looks like it, for another invocation.
        (
            "2024-03-01T12:30:40.000Z\tr-0\tINFO\thi",
            "r-1",
            "2024-03-01T12:30:45.678Z\tr-1\t2024-03-01T12:30:40.000Z\tr-0\tINFO\thi",
        ),
    ],
)
def test_label(text: str, request_id: str, expected: str) -> None:
    assert label(text, request_id, NOW) == expected


@pytest.mark.parametrize(
    ("pending", "data", "lines", "rest"),
    [
        (b"", b"a\nb\n", [b"a", b"b"], b""),
        (b"par", b"tial\nnext", [b"partial"], b"next"),
        (b"", b"windows\r\n", [b"windows"], b""),
        # A CR inside a line ends one too (runtimes keep a multi-line error in one event with it).
        (b"", b"[ERROR] boom\rTraceback\r  File x\n", [b"[ERROR] boom", b"Traceback", b"  File x"], b""),
        (b"", b"x" * (MAX_LINE_BYTES + 5), [b"x" * MAX_LINE_BYTES], b"xxxxx"),
    ],
)
def test_split_lines(pending: bytes, data: bytes, lines: list[bytes], rest: bytes) -> None:
    assert split_lines(pending, data) == (lines, rest)


async def test_the_pump_labels_what_was_written_before_its_drain() -> None:
    with tempfile.TemporaryFile() as out:
        sink = LogSink(out.fileno(), clock=lambda: NOW)
        current = {"id": "r-1"}
        read_fd, write_fd = os.pipe()
        seen: list[str] = []
        pump = OutputPump(read_fd, sink, lambda: current["id"], seen.append)
        os.write(write_fd, b"one\ntwo\nhalf")
        pump.drain()  # what the environment wrote before its invocation ended
        current["id"] = "r-2"
        os.write(write_fd, b" done\n")
        os.close(write_fd)
        async with asyncio.timeout(5):
            while read_fd >= 0 and not seen[2:]:
                await asyncio.sleep(0.001)
        pump.close()
        out.seek(0)
        assert out.read().decode().splitlines() == [
            "2024-03-01T12:30:45.678Z\tr-1\tone",
            "2024-03-01T12:30:45.678Z\tr-1\ttwo",
            "2024-03-01T12:30:45.678Z\tr-2\thalf done",
        ]
        assert seen == ["one", "two", "half done"]


def test_start_is_written_with_the_invocations_first_line_or_its_end() -> None:
    with tempfile.TemporaryFile() as out:
        sink = LogSink(out.fileno(), clock=lambda: NOW)
        sink.begin("r-1", "START RequestId: r-1 Version: $LATEST")
        sink.begin("r-2", "START RequestId: r-2 Version: $LATEST")
        sink.labelled(["hello"], "r-1")
        sink.finish("r-2", ["END RequestId: r-2"])
        sink.finish("r-1", ["END RequestId: r-1"])
        out.seek(0)
        assert out.read().decode().splitlines() == [
            "START RequestId: r-1 Version: $LATEST",
            "2024-03-01T12:30:45.678Z\tr-1\thello",
            "START RequestId: r-2 Version: $LATEST",
            "END RequestId: r-2",
            "END RequestId: r-1",
        ]
