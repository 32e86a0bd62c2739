"""The Redis stream destination against the local Redis (a unique stream per test, deleted after)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import redis

from esm.destinations.encoding import UnreadableEntry
from esm.destinations.errors import DestinationRejectedError, DestinationUnavailableError
from esm.destinations.opener import open_destination, read_records
from esm.destinations.redis_stream import RedisStreamDestination, open_redis_client


@pytest.fixture
def stream_name(redis_url: str) -> str:
    # Under the fixture's unique prefix, so the fixture deletes it afterwards.
    prefix = parse_qs(urlsplit(redis_url).query)["prefix"][0]
    return f"{prefix}:failures"


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379)
    yield client
    client.close()


def _record(n: int) -> dict[str, Any]:
    return {"requestContext": {"requestId": f"req-{n}", "approximateInvokeCount": n}, "payload": {"n": n}}


async def _read_all(uri: str) -> list[dict[str, Any]]:
    return [record async for record in read_records(uri)]


async def test_round_trip_one_entry_per_record_with_one_field(
    stream_name: str, sync_redis: redis.Redis
) -> None:
    uri = f"redis://127.0.0.1:6379/0?stream={stream_name}"
    destination = open_destination(uri, None)
    try:
        for n in range(3):
            await destination.send(_record(n))
    finally:
        await destination.close()

    entries: list[tuple[bytes, dict[bytes, bytes]]] = sync_redis.xrange(stream_name)  # type: ignore[assignment]
    assert [list(fields) for _, fields in entries] == [[b"record"]] * 3
    assert [orjson.loads(fields[b"record"]) for _, fields in entries] == [_record(n) for n in range(3)]
    assert await _read_all(uri) == [_record(n) for n in range(3)]


async def test_reading_pages_through_a_long_stream_in_order(stream_name: str) -> None:
    uri = f"redis://127.0.0.1:6379/0?stream={stream_name}"
    destination = open_destination(uri, None)
    try:
        for n in range(450):  # more than two pages
            await destination.send(_record(n))
    finally:
        await destination.close()
    assert [r["payload"]["n"] for r in await _read_all(uri)] == list(range(450))


async def test_reading_a_stream_that_does_not_exist_is_an_error(stream_name: str) -> None:
    with pytest.raises(DestinationRejectedError, match=r"does not exist \(no failure record was ever"):
        await _read_all(f"redis://127.0.0.1:6379/0?stream={stream_name}")


async def test_an_entry_that_is_not_a_record_is_named_and_reading_goes_on(
    stream_name: str, sync_redis: redis.Redis
) -> None:
    uri = f"redis://127.0.0.1:6379/0?stream={stream_name}"
    sync_redis.xadd(stream_name, {"record": b'{"torn'})
    sync_redis.xadd(stream_name, {"other": b"x"})
    destination = open_destination(uri, None)
    try:
        await destination.send(_record(3))
    finally:
        await destination.close()
    first, second, third = await _read_all(uri)
    assert isinstance(first, UnreadableEntry) and "is not valid JSON" in first.reason
    assert isinstance(second, UnreadableEntry) and second.reason == "has no `record` field"
    assert third == _record(3)


async def test_a_key_that_is_not_a_stream_is_a_permanent_error(
    stream_name: str, sync_redis: redis.Redis
) -> None:
    sync_redis.set(stream_name, b"a plain string")
    destination = open_destination(f"redis://127.0.0.1:6379/0?stream={stream_name}", None)
    try:
        with pytest.raises(DestinationRejectedError, match=r"WRONGTYPE") as caught:
            await destination.send(_record(1))
    finally:
        await destination.close()
    assert caught.value.retryable is False


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed


async def test_a_down_redis_is_a_retryable_error_reported_quickly() -> None:
    port = _closed_port()
    destination = RedisStreamDestination(
        open_redis_client(f"redis://127.0.0.1:{port}/0", connect_timeout_s=0.5, command_timeout_s=0.5),
        "failures",
        f"redis://127.0.0.1:{port}/0",
    )
    started = time.monotonic()
    try:
        with pytest.raises(
            DestinationUnavailableError, match=rf"127.0.0.1:{port}.*failed to add a record"
        ) as caught:
            await destination.send(_record(1))
    finally:
        await destination.close()
    assert caught.value.retryable is True
    assert time.monotonic() - started < 2.0


async def test_reading_from_a_down_redis_is_a_retryable_error() -> None:
    port = _closed_port()
    with pytest.raises(DestinationUnavailableError, match="failed to read records"):
        await _read_all(f"redis://127.0.0.1:{port}/0?stream=failures")
