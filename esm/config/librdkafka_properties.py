"""KafkaConsumerConfig for the confluent-kafka client: kafka-python keywords -> librdkafka properties.

A mapping's KafkaConsumerConfig is validated against Kafka's standard (Java) property names and
converted to kafka-python keywords (kafka_properties.py); with `KafkaClient: confluent-kafka`
those are translated once more here. A property librdkafka has no equivalent for is a config
error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# kafka-python keyword -> librdkafka property. The mapping's KafkaConsumerConfig is validated
# against Kafka's standard (Java) names and arrives here as kafka-python keywords.
_PROPERTY_NAMES = {
    "group_id": "group.id",
    "client_id": "client.id",
    "auto_offset_reset": "auto.offset.reset",
    "enable_auto_commit": "enable.auto.commit",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
    "fetch_max_wait_ms": "fetch.wait.max.ms",
    "fetch_min_bytes": "fetch.min.bytes",
    "fetch_max_bytes": "fetch.max.bytes",
    "max_partition_fetch_bytes": "max.partition.fetch.bytes",
    "isolation_level": "isolation.level",
    "check_crcs": "check.crcs",
    "retry_backoff_ms": "retry.backoff.ms",
    "reconnect_backoff_ms": "reconnect.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "connections_max_idle_ms": "connections.max.idle.ms",
    "metadata_max_age_ms": "metadata.max.age.ms",
    "request_timeout_ms": "socket.timeout.ms",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
}
# kafka-python settings with no librdkafka meaning.
_IGNORED = {"api_version", "max_poll_records"}


class UnsupportedClientSetting(ValueError):
    pass


def librdkafka_config(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Translates kafka-python consumer keywords into librdkafka properties."""
    config: dict[str, Any] = {"enable.auto.offset.store": False, "enable.partition.eof": False}
    for key, value in kwargs.items():
        if key == "bootstrap_servers":
            config["bootstrap.servers"] = ",".join(value) if isinstance(value, list | tuple) else value
        elif key == "partition_assignment_strategy":
            config["partition.assignment.strategy"] = ",".join(value)
        elif key in _PROPERTY_NAMES:
            config[_PROPERTY_NAMES[key]] = value
        elif key not in _IGNORED:
            raise UnsupportedClientSetting(
                f"{key.replace('_', '.')} has no confluent-kafka equivalent in esm; "
                "remove it or use KafkaClient: kafka-python"
            )
    return config
