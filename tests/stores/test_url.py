from __future__ import annotations

import pytest

from esm.stores.errors import StoreConfigError
from esm.stores.url import DEFAULT_STORE_URL, RedisLocation, SqliteLocation, StoreLocation, parse_store_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DEFAULT_STORE_URL, SqliteLocation("esm-state.db")),
        ("sqlite:///data/state.db", SqliteLocation("data/state.db")),
        ("sqlite:////var/lib/esm/state.db", SqliteLocation("/var/lib/esm/state.db")),
        (
            "redis://127.0.0.1:6379/0",
            RedisLocation("redis://127.0.0.1:6379/0", "esm:", "redis://127.0.0.1:6379/0"),
        ),
        ("redis://cache:6380", RedisLocation("redis://cache:6380", "esm:", "redis://cache:6380")),
        (
            "redis://127.0.0.1:6379/2?prefix=team-a",
            RedisLocation("redis://127.0.0.1:6379/2", "team-a:", "redis://127.0.0.1:6379/2?prefix=team-a"),
        ),
        (
            "redis://h:1/0?prefix=x:&health_check_interval=5",
            RedisLocation(
                "redis://h:1/0?health_check_interval=5",
                "x:",
                "redis://h:1/0?prefix=x:&health_check_interval=5",
            ),
        ),
        (
            "rediss://:s3cret@h:6379/1",
            RedisLocation("rediss://:s3cret@h:6379/1", "esm:", "rediss://:***@h:6379/1"),
        ),
    ],
)
def test_valid_urls(url: str, expected: StoreLocation) -> None:
    assert parse_store_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgres://db/esm",
            "Store: unsupported URL scheme 'postgres' (use sqlite:///path or redis://host:port/db)",
        ),
        ("state.db", "Store: URL 'state.db' has no scheme"),
        ("sqlite://host/state.db", "names a host 'host'"),
        ("sqlite:///", "has no file name"),
        ("sqlite:///dir/", "has no file name"),
        ("sqlite:///state.db?mode=ro", "takes no query"),
        ("redis:///0", "has no host"),
        ("redis://h:99999/0", "has a bad port"),
        ("redis://h:6379/cache", "has database 'cache'; it must be a number"),
        ("redis://h:6379/0?prefix=", "empty `prefix`"),
        ("redis://h:6379/0?prefix=a&prefix=b", "`prefix` more than once"),
    ],
)
def test_invalid_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError) as raised:
        parse_store_url(url)
    assert message in str(raised.value)


def test_passwords_stay_out_of_error_messages() -> None:
    with pytest.raises(StoreConfigError) as raised:
        parse_store_url("redis://:s3cret@h:6379/cache")
    assert "s3cret" not in str(raised.value)
