"""`KafkaClient`: which Kafka client library reads a mapping, and librdkafka's property names."""

from __future__ import annotations

import pytest

from esm.config import ConfigError, KafkaClient, parse_config
from esm.config.librdkafka_properties import UnsupportedClientSetting, librdkafka_config

from .conftest import build_config


def test_default_is_kafka_python() -> None:
    mapping = parse_config(build_config()).config.EventSourceMappings[0]
    assert mapping.KafkaClient is KafkaClient.KAFKA_PYTHON


def test_confluent_kafka_translates_java_property_names() -> None:
    data = build_config(
        {
            "KafkaClient": "confluent-kafka",
            "KafkaConsumerConfig": {
                "session.timeout.ms": 6000,
                "fetch.max.wait.ms": 20,
                "max.partition.fetch.bytes": 2048,
            },
        }
    )
    mapping = parse_config(data).config.EventSourceMappings[0]
    assert mapping.KafkaClient is KafkaClient.CONFLUENT_KAFKA
    config = mapping.librdkafka_config()
    assert config["session.timeout.ms"] == 6000
    assert config["fetch.wait.max.ms"] == 20  # librdkafka's name for Java's fetch.max.wait.ms
    assert config["max.partition.fetch.bytes"] == 2048


def test_unknown_client_is_an_error() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(build_config({"KafkaClient": "librdkafka"}))
    assert raised.value.problems == [
        "EventSourceMappings[0].KafkaClient: must be one of kafka-python, confluent-kafka, got 'librdkafka'"
    ]


def test_a_property_librdkafka_lacks_is_an_error_naming_it() -> None:
    data = build_config(
        {"KafkaClient": "confluent-kafka", "KafkaConsumerConfig": {"receive.buffer.bytes": 65536}}
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert raised.value.problems == [
        "EventSourceMappings[0].KafkaConsumerConfig: receive.buffer.bytes has no confluent-kafka equivalent "
        "in esm; remove it or use KafkaClient: kafka-python"
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"bootstrap_servers": ["a:1", "b:2"]}, {"bootstrap.servers": "a:1,b:2"}),
        ({"group_id": "g", "enable_auto_commit": False}, {"group.id": "g", "enable.auto.commit": False}),
        (
            {"sasl_plain_username": "u", "sasl_plain_password": "p"},
            {"sasl.username": "u", "sasl.password": "p"},
        ),
        ({"ssl_cafile": "/ca.pem"}, {"ssl.ca.location": "/ca.pem"}),
        ({"max_poll_records": 10}, {}),
        (
            {"partition_assignment_strategy": ("cooperative-sticky",)},
            {"partition.assignment.strategy": "cooperative-sticky"},
        ),
        (
            {"partition_assignment_strategy": ("range", "roundrobin")},
            {"partition.assignment.strategy": "range,roundrobin"},
        ),
    ],
)
def test_translation_table(kwargs: dict[str, object], expected: dict[str, object]) -> None:
    config = librdkafka_config(kwargs)
    # esm hands out offsets itself and never wants end-of-partition events
    assert config.pop("enable.auto.offset.store") is False
    assert config.pop("enable.partition.eof") is False
    assert config == expected


def test_untranslatable_keyword() -> None:
    with pytest.raises(UnsupportedClientSetting, match=r"send\.buffer\.bytes"):
        librdkafka_config({"send_buffer_bytes": 1})
