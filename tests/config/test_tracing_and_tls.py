"""`Tracing` and a function's `Tls`: what is accepted, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from esm.config import ConfigError, parse_config

FUNCTION = {"FunctionName": "fn", "Endpoints": ["127.0.0.1:50051"]}


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(config)
    return list(error.value.problems)


def test_tracing_defaults() -> None:
    tracing = parse_config({"Tracing": {"Endpoint": "http://127.0.0.1:4318"}}).config.Tracing
    assert tracing is not None
    assert (tracing.Endpoint, tracing.SampleRatio, tracing.ServiceName) == (
        "http://127.0.0.1:4318",
        1.0,
        "esm",
    )
    assert parse_config({}).config.Tracing is None


@pytest.mark.parametrize(
    ("tracing", "expected"),
    [
        ({}, "Tracing.Endpoint: is required"),
        (
            {"Endpoint": "127.0.0.1:4318"},
            "Tracing.Endpoint: expected the collector's base URL, http://HOST:PORT",
        ),
        ({"Endpoint": "http://h:70000"}, "Tracing.Endpoint: expected the collector's base URL"),
        ({"Endpoint": "http://h:4318?x=1"}, "Tracing.Endpoint: expected the collector's base URL"),
        (
            {"Endpoint": "http://h:4318", "SampleRatio": 1.5},
            "Tracing.SampleRatio: must be between 0 and 1, got 1.5",
        ),
        ({"Endpoint": "http://h:4318", "SampleRatio": "1"}, "Tracing.SampleRatio:"),
        ({"Endpoint": "http://h:4318", "ServiceName": ""}, "Tracing.ServiceName: expected a non-empty name"),
        ({"Endpoint": "http://h:4318", "Sample": 1}, "Tracing: unknown field 'Sample'"),
    ],
)
def test_tracing_errors_name_the_field(tracing: dict[str, Any], expected: str) -> None:
    [problem] = problems({"Tracing": tracing})
    assert problem.startswith(expected), problem


def test_function_tls() -> None:
    config = parse_config({"Functions": [{**FUNCTION, "Tls": {"CaFile": "/ca.pem"}}]}).config
    assert config.Functions[0].Tls is not None and config.Functions[0].Tls.CaFile == "/ca.pem"
    [problem] = problems({"Functions": [{**FUNCTION, "Tls": {"CaFile": "/ca.pem", "KeyFile": "/k.pem"}}]})
    assert problem.startswith("Functions[0].Tls: give both CertFile and KeyFile"), problem


def test_a_malformed_secret_is_not_echoed() -> None:
    mapping = {
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
        "Topics": ["t"],
        "StartingPosition": "LATEST",
        "KafkaConsumerConfig": {"sasl.plain.password": 918273645},
    }
    [problem] = problems({"Functions": [FUNCTION], "EventSourceMappings": [mapping]})
    assert "918273645" not in problem and "sasl.plain.password" in problem
    [store] = problems({"Store": "redis://:pw-91827@127.0.0.1:70000/0"})
    assert "pw-91827" not in store and "Store:" in store
