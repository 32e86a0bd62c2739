from __future__ import annotations

from typing import Any

import pytest

from esm.config import EsmConfig, parse_config
from esm.replay.source_cluster import names_own_cluster, source_cluster_for


def kafka_mapping(
    function: str, bootstrap: list[str], topic: str, destination: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "FunctionName": function,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}},
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
    }
    if destination is not None:
        entry["DestinationConfig"] = {"OnFailure": {"Destination": destination}}
    return entry


def config(*mappings: dict[str, Any]) -> EsmConfig:
    functions = [{"FunctionName": name, "Endpoints": ["127.0.0.1:1"]} for name in ("fn", "other")]
    return parse_config({"Functions": functions, "EventSourceMappings": list(mappings)}).config


def test_the_cluster_of_the_mapping_writing_to_the_destination_wins() -> None:
    loaded = config(
        kafka_mapping("other", ["a:9092"], "orders", destination="kafka://failed"),
        kafka_mapping("fn", ["b:9092"], "payments"),
    )
    assert source_cluster_for("kafka://failed", loaded, "fn") == ("a:9092",)


def test_otherwise_the_cluster_of_the_functions_mappings() -> None:
    loaded = config(
        kafka_mapping("fn", ["b:9092", "c:9092"], "one"), kafka_mapping("fn", ["c:9092", "b:9092"], "two")
    )
    assert source_cluster_for("kafka://failed", loaded, "fn") == ("b:9092", "c:9092")


def test_no_cluster_when_the_mappings_disagree_or_there_are_none() -> None:
    loaded = config(kafka_mapping("fn", ["a:9092"], "one"), kafka_mapping("fn", ["b:9092"], "two"))
    assert source_cluster_for("kafka://failed", loaded, "fn") is None
    assert source_cluster_for("kafka://failed", config(), "fn") is None


@pytest.mark.parametrize(
    ("uri", "own"),
    [
        ("kafka://failed", True),
        ("KAFKA://failed", True),
        ("kafka://h:9092/failed", False),
        ("file:///tmp/f.jsonl", False),
        ("redis://127.0.0.1:6379/0?stream=s", False),
    ],
)
def test_names_own_cluster(uri: str, own: bool) -> None:
    assert names_own_cluster(uri) is own
