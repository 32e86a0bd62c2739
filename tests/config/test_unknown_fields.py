"""An unknown field at any level of the config (or of a control-API mapping document) is named
with its place and, when a known field is close, the one that was probably meant."""

from __future__ import annotations

from typing import Any

import pytest

from esm.config import ConfigError, EsmConfig, parse_config, parse_mapping
from esm.config.field_names import field_names_at
from esm.config.suggestions import did_you_mean

from .conftest import KAFKA_MAPPING, build_config

M0 = "EventSourceMappings[0]"


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    return raised.value.problems


def with_top_level(**fields: Any) -> dict[str, Any]:
    return {**build_config(), **fields}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (with_top_level(Stroe="sqlite:///x.db"), "<config>: unknown field 'Stroe'; did you mean 'Store'?"),
        (with_top_level(ControlAPI={}), "<config>: unknown field 'ControlAPI'; did you mean 'ControlApi'?"),
        (with_top_level(Metrics={"host": "0.0.0.0"}), "Metrics: unknown field 'host'; did you mean 'Host'?"),
        (with_top_level(Nothing_like_it=1), "<config>: unknown field 'Nothing_like_it'"),
        (
            build_config(function_changes={"MemmorySize": 256}),
            "Functions[0]: unknown field 'MemmorySize'; did you mean 'MemorySize'?",
        ),
        (
            build_config(function_changes={"Environment": {"Variable": {}}}),
            "Functions[0].Environment: unknown field 'Variable'; did you mean 'Variables'?",
        ),
        (
            build_config({"BisectBatchOnFunctionErrors": True}),
            f"{M0}: unknown field 'BisectBatchOnFunctionErrors'; did you mean 'BisectBatchOnFunctionError'?",
        ),
        (
            build_config({"DestinationConfig": {"OnFailure": {"Destinaton": "file:///tmp/f.jsonl"}}}),
            f"{M0}.DestinationConfig.OnFailure: unknown field 'Destinaton'; did you mean 'Destination'?",
        ),
        (
            build_config({"DestinationConfig": {"OnFailur": {}}}),
            f"{M0}.DestinationConfig: unknown field 'OnFailur'; did you mean 'OnFailure'?",
        ),
        (
            build_config({"SelfManagedKafkaEventSourceConfig": {"ConsumerGroupID": "g"}}),
            f"{M0}.SelfManagedKafkaEventSourceConfig: unknown field 'ConsumerGroupID'; "
            "did you mean 'ConsumerGroupId'?",
        ),
        (
            build_config({"FilterCriteria": {"Filters": [{"Pattern": "{}"}, {"Patern": "{}"}]}}),
            f"{M0}.FilterCriteria.Filters[1]: unknown field 'Patern'; did you mean 'Pattern'?",
        ),
    ],
)
def test_unknown_fields_name_their_place_and_the_closest_known_one(
    data: dict[str, Any], problem: str
) -> None:
    assert problem in problems_of(data)


def test_a_control_api_mapping_document_gets_the_same_hint() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_mapping({**KAFKA_MAPPING, "BatchSzie": 5}, source="request")
    assert raised.value.problems == ["request: unknown field 'BatchSzie'; did you mean 'BatchSize'?"]


@pytest.mark.parametrize(
    ("loc", "some_names"),
    [
        ((), {"Store", "Functions", "EventSourceMappings", "ControlApi"}),
        (("Functions", 3), {"FunctionName", "Timeout", "Environment"}),
        (("EventSourceMappings", 0, "DestinationConfig", "OnFailure"), {"Destination", "IncludePayload"}),
        (("ControlApi", "AccessKeys", 1), {"AccessKeyId", "SecretAccessKeyEnv"}),
    ],
)
def test_the_field_names_known_at_a_place(loc: tuple[int | str, ...], some_names: set[str]) -> None:
    assert some_names <= set(field_names_at(EsmConfig, loc))


@pytest.mark.parametrize(
    "loc", [("Store",), ("Functions", "x"), ("EventSourceMappings", 0, "KafkaConsumerConfig"), ("Nope",)]
)
def test_places_that_are_no_model_know_no_field_names(loc: tuple[int | str, ...]) -> None:
    assert field_names_at(EsmConfig, loc) == []


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Timout", "; did you mean 'Timeout'?"),
        ("batchsize", "; did you mean 'BatchSize'?"),  # case is not a difference that hides a match
        ("BATCHSIZE", "; did you mean 'BatchSize'?"),
        ("functionname", "; did you mean 'FunctionName'?"),
        ("Xyz", ""),
    ],
)
def test_did_you_mean(name: str, hint: str) -> None:
    assert did_you_mean(name, ["Timeout", "BatchSize", "FunctionName"]) == hint
