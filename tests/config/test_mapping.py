from __future__ import annotations

from datetime import UTC, datetime

import pytest

from esm.config import EventSourceMappingConfig, KafkaSource, StartingPosition
from esm.config.identity import derive_mapping_uuid

from .conftest import KAFKA_MAPPING


def mapping(**changes: object) -> EventSourceMappingConfig:
    return EventSourceMappingConfig.model_validate({**KAFKA_MAPPING, **changes})


def test_defaults_and_accessors() -> None:
    loaded = mapping()
    assert loaded.function_name == "orders"
    assert loaded.starting_position is StartingPosition.TRIM_HORIZON
    assert loaded.starting_position_timestamp is None
    assert loaded.batch_size == 100
    assert loaded.batching_window_seconds == 0.5  # Kafka's default
    assert loaded.enabled is True
    assert loaded.kafka_consumer_kwargs() == {}
    assert loaded.MaximumRetryAttempts == -1
    assert loaded.ParallelizationFactor == 1


def test_kafka_source_defaults_consumer_group_to_the_uuid() -> None:
    loaded = mapping()
    assert loaded.source == KafkaSource(
        bootstrap_servers=("127.0.0.1:9092",), topic="orders", consumer_group_id=loaded.uuid
    )


def test_consumer_group_id_is_taken_when_given() -> None:
    loaded = mapping(SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "orders-esm"})
    assert isinstance(loaded.source, KafkaSource)
    assert loaded.source.consumer_group_id == "orders-esm"


def test_derived_uuid_is_stable_and_ignores_broker_order() -> None:
    servers = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b:9092", "a:9092"]}}
    reordered = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["a:9092", "b:9092"]}}
    first = mapping(SelfManagedEventSource=servers).uuid
    assert first == mapping(SelfManagedEventSource=servers).uuid
    assert first == mapping(SelfManagedEventSource=reordered).uuid
    # A pinned value: changing the derivation would orphan every consumer group and checkpoint.
    assert first == derive_mapping_uuid("orders", "kafka://a:9092,b:9092/orders")
    assert first == "c3806f80-b737-5930-a889-3ab03ad1df03"


@pytest.mark.parametrize(
    "changes",
    [
        {"FunctionName": "payments"},
        {"Topics": ["refunds"]},
        {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["other:9092"]}}},
    ],
)
def test_derived_uuid_changes_with_function_or_source(changes: dict[str, object]) -> None:
    assert mapping(**changes).uuid != mapping().uuid


def test_function_arn_resolves_to_same_uuid_as_name() -> None:
    by_arn = mapping(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:orders:live")
    assert by_arn.function_name == "orders"
    assert by_arn.uuid == mapping().uuid


def test_function_name_derived_from_function_arn() -> None:
    data = {key: value for key, value in KAFKA_MAPPING.items() if key != "FunctionName"}
    loaded = EventSourceMappingConfig.model_validate(
        {**data, "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders"}
    )
    assert loaded.function_name == "orders"


def test_explicit_uuid_is_kept() -> None:
    assert mapping(UUID="14e0db71-5d35-4eb5-b481-8945cf9d10c2").uuid == "14e0db71-5d35-4eb5-b481-8945cf9d10c2"


@pytest.mark.parametrize(("given", "expected"), [(0, 0.0), (2.5, 2.5), (300, 300.0)])
def test_batching_window_fractions(given: float, expected: float) -> None:
    assert mapping(MaximumBatchingWindowInSeconds=given).batching_window_seconds == expected


@pytest.mark.parametrize(
    "value",
    [
        1700000000,
        1700000000.0,
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20",
        "2023-11-15T00:13:20+02:00",
        datetime(2023, 11, 14, 22, 13, 20),
    ],
)
def test_at_timestamp_accepts_epoch_or_iso(value: object) -> None:
    loaded = mapping(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=value)
    assert loaded.starting_position is StartingPosition.AT_TIMESTAMP
    assert loaded.starting_position_timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_model_is_frozen() -> None:
    loaded = mapping()
    with pytest.raises(ValueError, match="frozen"):
        loaded.BatchSize = 5
