"""The JSON-lines file destination against real files in the test's tmp dir."""

from __future__ import annotations

import errno
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from esm.destinations.encoding import UnreadableEntry
from esm.destinations.errors import DestinationRejectedError, DestinationUnavailableError
from esm.destinations.file import FileDestination, append_line
from esm.destinations.opener import open_destination, read_records


def _record(n: int, padding: int = 0) -> dict[str, Any]:
    return {"requestContext": {"requestId": f"req-{n}"}, "version": "1.0", "payload": {"pad": "x" * padding}}


async def _read_all(uri: str) -> list[dict[str, Any]]:
    return [record async for record in read_records(uri)]


async def test_round_trip_creates_directories_and_writes_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there" / "failures.jsonl"
    uri = f"file://{path}"
    destination = open_destination(uri, None)
    records = [_record(n) for n in range(3)]
    for record in records:
        await destination.send(record)
    await destination.close()

    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # every record ends its line
    assert [orjson.loads(line) for line in lines[:-1]] == records
    assert await _read_all(uri) == records


async def test_appends_to_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    first, second = FileDestination(str(path)), FileDestination(str(path))
    await first.send(_record(1))
    await second.send(_record(2))
    await first.send(_record(3))
    assert [r["requestContext"]["requestId"] for r in await _read_all(f"file://{path}")] == [
        "req-1",
        "req-2",
        "req-3",
    ]


async def test_a_deleted_file_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    destination = FileDestination(str(path))
    await destination.send(_record(1))
    path.unlink()  # e.g. rotated away by an operator
    await destination.send(_record(2))
    assert await _read_all(f"file://{path}") == [_record(2)]


async def test_send_returns_only_after_the_data_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "failures.jsonl"
    synced_sizes: list[int] = []
    real_fsync = os.fsync

    def spying_fsync(fd: int) -> None:
        real_fsync(fd)
        synced_sizes.append(os.fstat(fd).st_size)

    monkeypatch.setattr(os, "fsync", spying_fsync)
    await FileDestination(str(path)).send(_record(1))
    # The file's data once it holds the line, then its new directory entry.
    line_size = len(orjson.dumps(_record(1))) + 1
    assert synced_sizes[0] == line_size
    assert len(synced_sizes) == 2


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    path.write_bytes(b'{"requestContext": {"requestId": "to')  # a crash mid-write
    append_line(str(path), orjson.dumps(_record(7)) + b"\n")
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == b'{"requestContext": {"requestId": "to'
    assert orjson.loads(lines[1]) == _record(7)


async def test_reading_names_the_file_and_line_of_a_bad_entry_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    path.write_bytes(orjson.dumps(_record(1)) + b"\n\n[1, 2]\n" + orjson.dumps(_record(2)) + b"\n")
    assert await _read_all(f"file://{path}") == [
        _record(1),
        UnreadableEntry(f"file {str(path)!r} line 3", "holds a JSON list, not a record object"),
        _record(2),
    ]


async def test_reading_a_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DestinationRejectedError, match=r"none.jsonl' does not exist \(no failure record"):
        await _read_all(f"file://{tmp_path / 'none.jsonl'}")


async def test_a_write_cut_short_by_a_full_disk_hides_no_later_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC half-way through a record leaves a torn line (issue 10, item 4); the retried and
    later records start on lines of their own, and a reader passes the torn one by."""
    path = tmp_path / "failures.jsonl"
    destination = FileDestination(str(path))
    await destination.send(_record(1))
    real_write = os.write

    def disk_fills_up(fd: int, data: Any) -> int:
        monkeypatch.setattr(os, "write", failing_write)
        return real_write(fd, bytes(data)[:20])  # a short write, as the disk fills

    def failing_write(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_fills_up)
    with pytest.raises(DestinationUnavailableError, match="No space left"):
        await destination.send(_record(2))
    monkeypatch.setattr(os, "write", real_write)  # room again: the engine retries record 2
    await destination.send(_record(2))
    await destination.send(_record(3))

    entries = await _read_all(f"file://{path}")
    assert len(entries) == 4
    assert entries[0] == _record(1)
    assert isinstance(entries[1], UnreadableEntry) and entries[1].where.endswith("line 2")
    assert entries[2:] == [_record(2), _record(3)]


async def test_a_path_that_cannot_be_a_file_is_a_permanent_error(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("I am a file, not a directory")
    destination = FileDestination(str(blocker / "failures.jsonl"))
    with pytest.raises(
        DestinationRejectedError, match=r"cannot append to file .*plain-file/failures.jsonl"
    ) as caught:
        await destination.send(_record(1))
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (errno.ENOSPC, True),
        (errno.EDQUOT, True),
        (errno.EIO, True),
        (errno.EACCES, False),
        (errno.EROFS, False),
    ],
)
def test_errno_decides_whether_a_write_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, retryable: bool
) -> None:
    def failing_write(fd: int, data: Any) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", failing_write)
    expected = DestinationUnavailableError if retryable else DestinationRejectedError
    with pytest.raises(expected, match=os.strerror(code)) as caught:
        append_line(str(tmp_path / "f.jsonl"), b"{}\n")
    assert caught.value.retryable is retryable


_WRITERS = 4
_RECORDS_EACH = 15
_PADDING = 70_000  # each line well past a pipe buffer, so interleaving would show


def _append_many(path: str, writer: int) -> None:
    for n in range(_RECORDS_EACH):
        record = {"writer": writer, "n": n, "pad": str(writer) * _PADDING}
        append_line(path, orjson.dumps(record) + b"\n")


async def test_several_processes_appending_never_interleave_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.jsonl")
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append_many, args=(path, w)) for w in range(_WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    records = await _read_all(f"file://{path}")
    assert len(records) == _WRITERS * _RECORDS_EACH
    for record in records:
        assert record["pad"] == str(record["writer"]) * _PADDING
    for writer in range(_WRITERS):
        assert [r["n"] for r in records if r["writer"] == writer] == list(range(_RECORDS_EACH))


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that takes nothing away, so the modes seen are the ones esm chose."""
    previous = os.umask(0)
    yield
    os.umask(previous)


async def test_a_new_file_is_readable_by_its_owner_only(tmp_path: Path, loose_umask: None) -> None:
    """Failure records hold event payloads (issue 10, item 8): 0600, its new directory 0700."""
    path = tmp_path / "new-dir" / "failures.jsonl"
    await open_destination(f"file://{path}").send(_record(1))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


async def test_the_mode_is_configurable_and_exact_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    previous = os.umask(0o077)
    try:
        await open_destination(f"file://{path}?mode=0640").send(_record(1))
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640


async def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    path.write_bytes(b"")
    path.chmod(0o644)
    await open_destination(f"file://{path}").send(_record(1))
    assert path.stat().st_mode & 0o777 == 0o644


def planted_link(tmp_path: Path, dangling: bool) -> tuple[Path, Path]:
    """A symbolic link at the destination path, and where it points (absent when dangling)."""
    elsewhere = tmp_path / "elsewhere.jsonl"
    if not dangling:
        elsewhere.write_bytes(b"")
    link = tmp_path / "failures.jsonl"
    link.symlink_to(elsewhere)
    return link, elsewhere


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
async def test_a_symbolic_link_at_the_path_is_refused(tmp_path: Path, dangling: bool) -> None:
    link, elsewhere = planted_link(tmp_path, dangling)
    with pytest.raises(DestinationRejectedError, match=r"is a symbolic link.*follow_symlinks=true"):
        await open_destination(f"file://{link}").send(_record(1))
    if dangling:
        assert not elsewhere.exists()
    else:
        assert elsewhere.read_bytes() == b""  # nothing written through the link


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
async def test_a_symbolic_link_is_followed_when_the_uri_says_so(tmp_path: Path, dangling: bool) -> None:
    link, elsewhere = planted_link(tmp_path, dangling)
    await open_destination(f"file://{link}?follow_symlinks=true").send(_record(1))
    assert [orjson.loads(line) for line in elsewhere.read_bytes().splitlines()] == [_record(1)]
