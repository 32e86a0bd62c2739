"""Fixtures shared by the whole suite: the real services of SERVICES.md, one per need.

- `kafka_broker`: one embedded Tansu broker for the session; yields its bootstrap string.
- `new_topic`: a factory making a fresh, explicitly created topic per call (Tansu would
  auto-create 4 partitions on first touch, and topics must never be shared between tests).
- `redis_url`: Redis at 127.0.0.1:6379 with a unique `?prefix=` per test; keys under the
  prefix are deleted afterwards. An unreachable Redis FAILS the test: it must never be skipped.
- `sqlite_store_url`: `sqlite:////abs/path` to a fresh file in the test's tmp dir.

Tests that use a real-service fixture are marked `integration` automatically; they run by
default (`-m "not integration"` selects the rest).
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

# kafka-python 3.0.12 loads its protocol schemas with deprecated importlib.resources calls when
# it is first imported: ~200 identical warnings per run that would hide the ones about our code.
warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)

from hang_report import HangReporter  # noqa: E402
from stream_services import DynamoDBLocal, KinesisMock  # noqa: E402

from esm.embedded import TansuBroker, create_topic  # noqa: E402

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
_REAL_SERVICE_FIXTURES = frozenset(
    {"kafka_broker", "new_topic", "redis_url", "kinesis_mock", "dynamodb_local"}
)
_TOPIC_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _REAL_SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# Seconds before pytest-timeout's limit at which a still-running test prints its asyncio tasks.
_HANG_REPORT_MARGIN_SECONDS = 20.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(item.config.getini("timeout") or 0)
    if limit <= _HANG_REPORT_MARGIN_SECONDS:
        return (yield)
    with HangReporter(limit - _HANG_REPORT_MARGIN_SECONDS, item.nodeid):
        return (yield)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with TansuBroker(log_path=log_path) as broker:
        yield broker.bootstrap


@pytest.fixture
def new_topic(kafka_broker: str, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Call `new_topic()` or `new_topic(partitions=N)`; returns the created topic's name."""
    test_part = _TOPIC_NAME_UNSAFE.sub("-", request.node.name)[:80]

    def make(partitions: int = 4) -> str:
        name = f"t-{test_part}-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_broker, name, partitions)
        return name

    return make


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(
            f"Redis is not answering on {REDIS_HOST}:{REDIS_PORT} ({exc}); the Redis tests must run, "
            "not be skipped: start it (scripts/test.sh does) and run again",
            pytrace=False,
        )
    prefix = f"esmtest-{uuid.uuid4().hex[:12]}"
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def sqlite_store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path.resolve() / 'store.sqlite'}"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn: a SQLite file in tmp_path, the local Redis under a unique prefix."""
    fixture = "sqlite_store_url" if request.param == "sqlite" else "redis_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="session")
def kinesis_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KinesisMock]:
    """kinesis-mock on a free loopback port for the session (installed by scripts/test.sh)."""
    emulator = KinesisMock(tmp_path_factory.mktemp("kinesis") / "kinesis-mock.log").start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    """DynamoDB Local (with DynamoDB Streams) on a free loopback port for the session."""
    emulator = DynamoDBLocal(tmp_path_factory.mktemp("dynamodb") / "dynamodb-local.log").start()
    yield emulator
    emulator.stop()
