"""ConfluentGroupReader's own decisions, with a fake librdkafka consumer (the reader's behaviour
against a real broker is in tests/sources/test_kafka.py)."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from esm.sources.kafka_confluent import ConfluentGroupReader
from esm.sources.kafka_group import ClientError, ReaderSettings

from .kafka_events import Collector

TIMED_OUT = "Failed to get committed offsets: Local: Timed out"


def raise_bare_kafka_error() -> None:
    """What confluent-kafka's close() does when a rebalance callback failed during it: a KafkaError
    object raised as the exception itself (set from C; Python code cannot raise it)."""
    error = KafkaError(KafkaError._TIMED_OUT, TIMED_OUT)
    ctypes.pythonapi.PyErr_SetObject(ctypes.py_object(KafkaError), ctypes.py_object(error))


def raise_kafka_exception() -> None:
    raise KafkaException(KafkaError(KafkaError._TIMED_OUT, TIMED_OUT))


class ClosingFails:
    def __init__(self, close: Callable[[], None]) -> None:
        self.close = close


@pytest.mark.parametrize("close", [raise_bare_kafka_error, raise_kafka_exception])
def test_a_close_that_fails_is_a_client_error(close: Callable[[], None]) -> None:
    """A ClientError is what the reader's thread catches (and goes on from); the bare KafkaError
    matched no `except Exception` and ended the thread."""
    loop = asyncio.new_event_loop()
    try:
        reader = ConfluentGroupReader(
            ReaderSettings(topic="t", consumer_kwargs={}, start="earliest"), Collector(), loop, len
        )
        with pytest.raises(ClientError, match="Local: Timed out"):
            reader._close_client(ClosingFails(close))
    finally:
        loop.close()
