from __future__ import annotations

import pytest
from kafka import KafkaConsumer

from esm.config.kafka_properties import PropertyProblem, consumer_kwargs


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300, "fetch.max.wait.ms": 20},
            {"session_timeout_ms": 1500, "heartbeat_interval_ms": 300, "fetch_max_wait_ms": 20},
        ),
        ({"session.timeout.ms": 1500}, {"session_timeout_ms": 1500, "heartbeat_interval_ms": 500}),
        (
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.plain.username": "u",
                "sasl.plain.password": "p",
            },
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "u",
                "sasl_plain_password": "p",
            },
        ),
        (
            {
                "ssl.truststore.location": "/ca.pem",
                "ssl.truststore.type": "PEM",
                "ssl.keystore.location": "/client.pem",
                "ssl.keystore.type": "PEM",
                "ssl.key.password": "k",
                "ssl.endpoint.identification.algorithm": "",
            },
            {
                "ssl_cafile": "/ca.pem",
                "ssl_certfile": "/client.pem",
                "ssl_password": "k",
                "ssl_check_hostname": False,
            },
        ),
        ({"ssl.cafile": "/ca.pem", "check.crcs": False}, {"ssl_cafile": "/ca.pem", "check_crcs": False}),
        ({"api.version": "2.8.0", "client.id": "esm-1"}, {"api_version": (2, 8, 0), "client_id": "esm-1"}),
        ({}, {}),
        (
            {"partition.assignment.strategy": "cooperative-sticky"},
            {"partition_assignment_strategy": ("cooperative-sticky",)},
        ),
        (
            {"partition.assignment.strategy": "org.apache.kafka.clients.consumer.RangeAssignor, roundrobin"},
            {"partition_assignment_strategy": ("range", "roundrobin")},
        ),
    ],
)
def test_properties_become_kafka_python_kwargs(
    properties: dict[str, object], expected: dict[str, object]
) -> None:
    kwargs, problems = consumer_kwargs(properties)
    assert problems == []
    assert kwargs == expected
    assert set(kwargs) <= set(KafkaConsumer.DEFAULT_CONFIG)


@pytest.mark.parametrize(
    ("properties", "prop", "message"),
    [
        ({"sesion.timeout.ms": 1500}, "sesion.timeout.ms", "did you mean 'session.timeout.ms'?"),
        ({"session_timeout_ms": 1500}, "session_timeout_ms", "unknown Kafka consumer property"),
        ({"interceptor.classes": "x"}, "interceptor.classes", "unknown Kafka consumer property"),
        (
            {"partition.assignment.strategy": "fair"},
            "partition.assignment.strategy",
            "unknown assignor 'fair': use one of range, roundrobin, sticky, cooperative-sticky",
        ),
        (
            {"partition.assignment.strategy": "sticky,cooperative-sticky"},
            "partition.assignment.strategy",
            "cannot mix cooperative-sticky with eager assignors",
        ),
        ({"partition.assignment.strategy": 3}, "partition.assignment.strategy", "expected assignor names"),
        (
            {"group.id": "g"},
            "group.id",
            "is set by esm, not here: it comes from SelfManagedKafkaEventSourceConfig",
        ),
        ({"bootstrap.servers": "h:1"}, "bootstrap.servers", "is set by esm"),
        ({"enable.auto.commit": True}, "enable.auto.commit", "is set by esm"),
        ({"auto.offset.reset": "earliest"}, "auto.offset.reset", "it comes from StartingPosition"),
        ({"key.deserializer": "x"}, "key.deserializer", "is set by esm"),
        ({"value.deserializer": "x"}, "value.deserializer", "is set by esm"),
        (
            {"sasl.jaas.config": "org.apache..."},
            "sasl.jaas.config",
            "not supported (kafka-python has no JAAS)",
        ),
        ({"ssl.truststore.location": "/t.jks"}, "ssl.truststore.location", "set ssl.truststore.type: PEM"),
        (
            {"ssl.truststore.location": "/t.jks", "ssl.truststore.type": "JKS"},
            "ssl.truststore.type",
            "only PEM",
        ),
        ({"session.timeout.ms": "1500"}, "session.timeout.ms", "expected an integer, got '1500'"),
        ({"session.timeout.ms": True}, "session.timeout.ms", "expected an integer, got true"),
        ({"check.crcs": "false"}, "check.crcs", "expected true or false, got 'false'"),
        ({"client.id": 7}, "client.id", "expected a string, got 7"),
        (
            {"security.protocol": "TLS"},
            "security.protocol",
            "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        (
            {"sasl.mechanism": "PLAIN"},
            "sasl.mechanism",
            "PLAIN needs sasl.plain.username and sasl.plain.password",
        ),
        ({"api.version": "two"}, "api.version", "expected a broker version"),
        (
            {"session.timeout.ms": 1000, "heartbeat.interval.ms": 1000},
            "heartbeat.interval.ms",
            "must be lower than session.timeout.ms (1000), got 1000",
        ),
        (
            {"heartbeat.interval.ms": 50000},
            "heartbeat.interval.ms",
            "must be lower than session.timeout.ms (45000)",
        ),
        ({"request.timeout.ms": 400}, "request.timeout.ms", "fetch.max.wait.ms < request.timeout.ms"),
    ],
)
def test_bad_property_is_named_with_reason(properties: dict[str, object], prop: str, message: str) -> None:
    _, problems = consumer_kwargs(properties)
    assert len(problems) == 1, problems
    assert problems[0].property == prop
    assert message in problems[0].message


def test_every_bad_property_is_reported() -> None:
    _, problems = consumer_kwargs({"group.id": "g", "sesion.timeout.ms": 1, "client.id": 1})
    assert [found.property for found in problems] == ["group.id", "sesion.timeout.ms", "client.id"]
    assert all(isinstance(found, PropertyProblem) for found in problems)


def test_converted_kwargs_are_accepted_by_kafka_python() -> None:
    kwargs, problems = consumer_kwargs(
        {"session.timeout.ms": 1200, "fetch.max.wait.ms": 20, "client.id": "t"}
    )
    assert problems == []
    # bootstrap_timeout_ms small and api_version fixed: construction must not need a broker.
    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 8, 0), **kwargs)
    try:
        assert consumer.config["heartbeat_interval_ms"] == 400
        assert consumer.config["session_timeout_ms"] == 1200
    finally:
        consumer.close()
