"""`open_destination` picks the writer a URI names and opens nothing until the first record."""

from __future__ import annotations

import pytest

from esm.destinations import DestinationConfigError, open_destination, read_records
from esm.destinations.file import FileDestination
from esm.destinations.kafka_topic import KafkaTopicDestination
from esm.destinations.redis_stream import RedisStreamDestination


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("file:///tmp/esm-never-written/failures.jsonl", FileDestination),
        # Nothing listens on port 1: opening must not connect.
        ("redis://127.0.0.1:1/0?stream=failures", RedisStreamDestination),
        ("kafka://127.0.0.1:1/failures", KafkaTopicDestination),
        ("kafka://failures", KafkaTopicDestination),
    ],
)
async def test_each_uri_opens_its_writer_without_connecting(uri: str, kind: type) -> None:
    destination = open_destination(uri, ["127.0.0.1:1"])
    assert isinstance(destination, kind)
    await destination.close()


def test_a_bad_uri_fails_at_open_and_is_not_retryable() -> None:
    with pytest.raises(DestinationConfigError, match="an SQS queue ARN") as caught:
        open_destination("arn:aws:sqs:us-east-1:111111111111:failures", None)
    assert caught.value.retryable is False


async def test_read_records_checks_the_uri_too() -> None:
    with pytest.raises(DestinationConfigError, match="source is not Kafka"):
        _ = [record async for record in read_records("kafka://failures")]
