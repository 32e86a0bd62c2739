"""Embedded services: the bundled Kafka-compatible broker (Tansu) and Kafka helpers around it."""

from esm.embedded.tansu import (
    TansuBinaryNotFound,
    TansuBroker,
    TansuError,
    TansuPortInUse,
    TansuStartError,
    find_tansu_binary,
)
from esm.embedded.topics import (
    KafkaHelperError,
    OutgoingRecord,
    committed_offsets,
    create_topic,
    produce,
    read_highwaters,
)

__all__ = [
    "KafkaHelperError",
    "OutgoingRecord",
    "TansuBinaryNotFound",
    "TansuBroker",
    "TansuError",
    "TansuPortInUse",
    "TansuStartError",
    "committed_offsets",
    "create_topic",
    "find_tansu_binary",
    "produce",
    "read_highwaters",
]
