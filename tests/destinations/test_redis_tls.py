"""rediss:// for the on-failure destination and the store, against a real TLS-only redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_tls import TlsRedis, tls_redis

from esm.destinations.opener import open_destination, read_records
from esm.stores import open_store

PASSWORD = "tls-redis-pw-6f1c"


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    with tls_redis(tmp_path_factory.mktemp("redis-tls"), PASSWORD) as server:
        yield server


async def test_a_rediss_destination_writes_and_reads_back_over_tls(secure_redis: TlsRedis) -> None:
    uri = secure_redis.url("stream=failures")
    destination = open_destination(uri, None)
    try:
        await destination.send({"n": 1})
    finally:
        await destination.close()
    assert [record async for record in read_records(uri)] == [{"n": 1}]
    with secure_redis.client() as client:
        assert client.xlen("failures") == 1


async def test_a_rediss_store_keeps_permits_over_tls(secure_redis: TlsRedis) -> None:
    store = open_store(secure_redis.url("prefix=tls-store"))
    try:
        await store.status.publish("m-1", {"p-0": {"owner": "me"}}, 5.0, 0.0)
    finally:
        await store.close()
    with secure_redis.client() as client:
        assert client.keys("tls-store:*")


async def test_a_wrong_password_is_an_error_that_does_not_show_it(
    secure_redis: TlsRedis, tmp_path: Path
) -> None:
    uri = secure_redis.url("stream=failures", password="wrong-pw-93ad")
    destination = open_destination(uri, None)
    try:
        with pytest.raises(Exception) as failure:
            await destination.send({"n": 2})
    finally:
        await destination.close()
    assert "wrong-pw-93ad" not in str(failure.value) and PASSWORD not in str(failure.value)
