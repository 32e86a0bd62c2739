"""Typed event sources: what a mapping reads from.

Only `KafkaSource` is processed today; the others are parsed so that their ARNs are checked and
the next source's engineer only lifts the "not supported yet" restriction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KafkaSource:
    """A self-managed Kafka topic (SelfManagedEventSource + Topics)."""

    bootstrap_servers: tuple[str, ...]
    topic: str
    consumer_group_id: str
    """SelfManagedKafkaEventSourceConfig.ConsumerGroupId, or the mapping UUID (AWS's default)."""

    @property
    def identity(self) -> str:
        return kafka_source_identity(self.bootstrap_servers, self.topic)


@dataclass(frozen=True)
class KinesisSource:
    """A Kinesis data stream, `arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME`."""

    arn: str
    region: str
    account: str
    stream_name: str
    consumer_name: str | None = None
    """Set when the ARN names an enhanced fan-out consumer (`stream/NAME/consumer/CONSUMER:TS`)."""

    @property
    def identity(self) -> str:
        return self.arn


@dataclass(frozen=True)
class DynamoDBStreamsSource:
    """A DynamoDB stream: `...:table/TABLE/stream/LABEL`, or `...:table/TABLE` (its latest stream)."""

    arn: str
    region: str
    account: str
    table_name: str
    stream_label: str | None

    @property
    def identity(self) -> str:
        return self.arn


@dataclass(frozen=True)
class MskSource:
    """An Amazon MSK cluster, `arn:PARTITION:kafka:REGION:ACCOUNT:cluster/NAME/ID`."""

    arn: str
    region: str
    account: str
    cluster_name: str

    @property
    def identity(self) -> str:
        return self.arn


ArnSource = KinesisSource | DynamoDBStreamsSource | MskSource
EventSource = KafkaSource | ArnSource


def kafka_source_identity(bootstrap_servers: tuple[str, ...], topic: str) -> str:
    """Order-independent: listing the same brokers differently is the same source."""
    return "kafka://" + ",".join(sorted(bootstrap_servers)) + "/" + topic
