"""`esm topic create`: create a Kafka topic with a number of partitions (any Kafka cluster)."""

from __future__ import annotations

import sys

from esm.kafka_tools import CONNECT_TIMEOUT_S, error_text


def create_topic_command(name: str, partitions: int, bootstrap_servers: str) -> int:
    """0 when the topic was created, 1 when it could not be (it exists, no broker answers), 2 for a
    bad --partitions."""
    if partitions < 1:
        _say(f"--partitions must be at least 1, got {partitions}")
        return 2
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    from esm.embedded.topics import KafkaHelperError, create_topic

    try:
        create_topic(bootstrap_servers, name, partitions, bootstrap_timeout_s=CONNECT_TIMEOUT_S)
    except TopicAlreadyExistsError:
        _say(f"topic {name!r} already exists on {bootstrap_servers}")
        return 1
    except (KafkaError, KafkaHelperError) as exc:
        _say(f"cannot create topic {name!r} on {bootstrap_servers}: {error_text(exc)}")
        return 1
    _say(
        f"created topic {name!r} with {partitions} partition{'s' * (partitions != 1)} on {bootstrap_servers}"
    )
    return 0


def _say(text: str) -> None:
    print(f"esm topic: {text}", file=sys.stderr, flush=True)
