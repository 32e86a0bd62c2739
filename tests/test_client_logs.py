"""The Kafka clients' own lines are demoted to DEBUG: hidden at INFO, shown (as DEBUG) at DEBUG."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from esm.client_logs import DemoteClientLines


@pytest.fixture
def logger_output() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    yield handler, out


def _emit(handler: logging.Handler, name: str, level: int, message: str) -> None:
    handler.handle(logging.LogRecord(name, level, __file__, 1, message, None, None))


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (
            logging.INFO,
            ["ERROR esm.sources.kafka_group: cannot reach the brokers", "WARNING kafkaesque: not a client"],
        ),
        (
            logging.DEBUG,
            [
                "DEBUG kafka.net.manager: Connection failed",
                "DEBUG esm.librdkafka: FAIL 127.0.0.1:1",
                "ERROR esm.sources.kafka_group: cannot reach the brokers",
                "WARNING kafkaesque: not a client",
            ],
        ),
    ],
)
def test_client_lines_are_debug_lines(
    logger_output: tuple[logging.Handler, io.StringIO], threshold: int, expected: list[str]
) -> None:
    handler, out = logger_output
    handler.addFilter(DemoteClientLines(threshold))
    _emit(handler, "kafka.net.manager", logging.ERROR, "Connection failed")
    _emit(handler, "esm.librdkafka", logging.WARNING, "FAIL 127.0.0.1:1")
    _emit(handler, "esm.sources.kafka_group", logging.ERROR, "cannot reach the brokers")
    _emit(handler, "kafkaesque", logging.WARNING, "not a client")
    assert out.getvalue().splitlines() == expected
