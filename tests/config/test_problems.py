from __future__ import annotations

import pytest

from esm.config.problems import ConfigError, describe, format_location


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("EventSourceMappings", 0, "BatchSize"), "EventSourceMappings[0].BatchSize"),
        (("Functions", 1, "Endpoints", 0), "Functions[1].Endpoints[0]"),
        (
            ("EventSourceMappings", 2, "KafkaConsumerConfig", "session.timeout.ms"),
            "EventSourceMappings[2].KafkaConsumerConfig['session.timeout.ms']",
        ),
        ((), "esm.yaml"),
    ],
)
def test_format_location(loc: tuple[int | str, ...], expected: str) -> None:
    assert format_location(loc, "esm.yaml") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FOO", "'FOO'"),
        (True, "true"),
        (None, "null"),
        (300.0, "300"),
        (0.25, "0.25"),
        ({}, "a mapping"),
        ([], "a list"),
    ],
)
def test_describe_writes_values_as_in_yaml(value: object, expected: str) -> None:
    assert describe(value) == expected


def test_config_error_str_is_one_problem_per_line() -> None:
    error = ConfigError(["a: wrong", "b: also wrong"])
    assert str(error) == "a: wrong\nb: also wrong"
    assert error.problems == ["a: wrong", "b: also wrong"]
