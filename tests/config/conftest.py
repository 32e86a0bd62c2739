"""Builders for config data: a minimal valid Kafka config that each test changes in one place."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

KAFKA_MAPPING: dict[str, Any] = {
    "FunctionName": "orders",
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
    "Topics": ["orders"],
    "StartingPosition": "TRIM_HORIZON",
}
FUNCTION: dict[str, Any] = {"FunctionName": "orders", "Endpoints": ["127.0.0.1:50051"]}

ConfigBuilder = Callable[..., dict[str, Any]]


def build_config(
    mapping_changes: dict[str, Any] | None = None,
    function_changes: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One function and one Kafka mapping; `drop` removes mapping keys."""
    mapping = {**copy.deepcopy(KAFKA_MAPPING), **(mapping_changes or {})}
    for key in drop:
        mapping.pop(key, None)
    function = {**copy.deepcopy(FUNCTION), **(function_changes or {})}
    return {"Functions": [function], "EventSourceMappings": [mapping]}


@pytest.fixture
def config_data() -> ConfigBuilder:
    return build_config
