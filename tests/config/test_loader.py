"""Loading files, `esm validate`, and pasting mappings exactly as AWS returns them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_recorded import recorded_fixtures

from esm.config import ConfigError, KafkaSource, StartingPosition, load_config, parse_config, validate_command
from esm.config.arns import resolve_function_name

from .conftest import build_config

EXAMPLE_YAML = """\
Store: sqlite:///esm-state.db
Metrics: {Port: 9108, Host: 0.0.0.0}
ShutdownGracePeriodSeconds: 30
Functions:
  - FunctionName: orders
    Endpoints: ["127.0.0.1:50051"]
    ReservedConcurrentExecutions: 4
    Timeout: 30
    MemorySize: 128
EventSourceMappings:
  - FunctionName: orders
    SelfManagedEventSource: {Endpoints: {KAFKA_BOOTSTRAP_SERVERS: ["127.0.0.1:9092"]}}
    Topics: [orders]
    SelfManagedKafkaEventSourceConfig: {ConsumerGroupId: orders-esm}
    StartingPosition: TRIM_HORIZON
    BatchSize: 100
    MaximumBatchingWindowInSeconds: 0.5
    KafkaConsumerConfig: {session.timeout.ms: 1500, heartbeat.interval.ms: 300, fetch.max.wait.ms: 20}
    Enabled: true
"""

# A self-managed Kafka mapping as GetEventSourceMapping returns it, every AWS default filled in.
PASTED_KAFKA_MAPPING: dict[str, Any] = {
    "UUID": "14e0db71-5d35-4eb5-b481-8945cf9d10c2",
    "StartingPosition": "LATEST",
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "ParallelizationFactor": 1,
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders",
    "LastModified": "2024-05-01T12:00:00.000000+00:00",
    "LastProcessingResult": "No records processed",
    "State": "Enabled",
    "StateTransitionReason": "USER_INITIATED",
    "DestinationConfig": {"OnFailure": {}},
    "Topics": ["orders"],
    "SourceAccessConfigurations": [
        {"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka"}
    ],
    "SelfManagedEventSource": {
        "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b-1.example.com:9092", "b-2.example.com:9092"]}
    },
    "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "orders-consumers"},
    "MaximumRecordAgeInSeconds": -1,
    "BisectBatchOnFunctionError": False,
    "MaximumRetryAttempts": -1,
    "TumblingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
    "FilterCriteria": {},
    "EventSourceMappingArn": "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:"
    "14e0db71-5d35-4eb5-b481-8945cf9d10c2",
    "MetricsConfig": {"Metrics": ["EventCount"]},
    "ProvisionedPollerConfig": {"MinimumPollers": 1, "MaximumPollers": 200},
    "FilterCriteriaError": {},
    "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}},
}


def with_functions(*mappings: dict[str, Any]) -> dict[str, Any]:
    names = sorted({resolve_function_name(m.get("FunctionName") or m["FunctionArn"]) for m in mappings})
    functions = [{"FunctionName": name, "Endpoints": ["127.0.0.1:50051"]} for name in names]
    return {"Functions": functions, "EventSourceMappings": list(mappings)}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- files ---


def test_example_yaml_loads(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "esm.yaml", EXAMPLE_YAML))
    mapping = loaded.config.EventSourceMappings[0]
    assert loaded.warnings == []
    assert loaded.config.function("orders").ReservedConcurrentExecutions == 4
    assert mapping.source == KafkaSource(("127.0.0.1:9092",), "orders", "orders-esm")
    assert mapping.kafka_consumer_kwargs() == {
        "session_timeout_ms": 1500,
        "heartbeat_interval_ms": 300,
        "fetch_max_wait_ms": 20,
    }


def test_json_file_loads_by_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "esm.json", json.dumps(build_config()))
    assert (
        load_config(str(path)).config.EventSourceMappings[0].starting_position
        is StartingPosition.TRIM_HORIZON
    )


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "esm.yaml",
            "Functions:\n  - FunctionName: orders\n    Endpoints: [a:1\n",
            r"esm\.yaml:4:1: invalid YAML: ",
        ),
        (
            "esm.yaml",
            "Store: x\n  bad: indent\n",
            r"esm\.yaml:2:6: invalid YAML: mapping values are not allowed here",
        ),
        ("esm.yaml", "Store: a\nStore: b\n", r"esm\.yaml:2:1: invalid YAML: duplicate key 'Store'"),
        ("esm.json", '{\n  "Store": "x",\n}\n', r"esm\.json:3:1: invalid JSON: "),
        ("esm.json", '{"Store": "a", "Store": "b"}', r"esm\.json: invalid JSON: duplicate key 'Store'"),
        ("esm.yaml", "", r"esm\.yaml: the file is empty"),
        ("esm.yaml", "- just\n- a list\n", r"esm\.yaml: expected a mapping, got a list"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, name, text))
    assert len(caught.value.problems) == 1
    assert re.search(problem, caught.value.problems[0]), caught.value.problems


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


# --- esm validate ---


def test_validate_command_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_command(str(write(tmp_path, "esm.yaml", EXAMPLE_YAML))) == 0
    captured = capsys.readouterr()
    assert captured.out == "OK: 1 function, 1 mapping\n"
    assert captured.err == ""


def test_validate_command_prints_warnings_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE_YAML + "    ScalingConfig: {MaximumConcurrency: 5}\n"
    assert validate_command(str(write(tmp_path, "esm.yaml", text))) == 0
    captured = capsys.readouterr()
    assert captured.out == "OK: 1 function, 1 mapping\n"
    assert captured.err == (
        "warning: EventSourceMappings[0].ScalingConfig: ignored, AWS-only setting "
        "(concurrency is the function's ReservedConcurrentExecutions)\n"
    )


def test_validate_command_prints_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE_YAML.replace("BatchSize: 100", "BatchSize: 20000\n    BatchSzie: 1").replace(
        '["127.0.0.1:50051"]', '["localhost"]'
    )
    assert validate_command(str(write(tmp_path, "esm.yaml", text))) == 1
    assert capsys.readouterr().out.splitlines() == [
        "Functions[0].Endpoints[0]: expected host:port, got 'localhost'",
        "EventSourceMappings[0].BatchSize: must be between 1 and 10000, got 20000",
        "EventSourceMappings[0]: unknown field 'BatchSzie'; did you mean 'BatchSize'?",
    ]


def test_validate_command_reports_yaml_syntax_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "esm.yaml", "Store: x\n  bad: indent\n")
    assert validate_command(str(path)) == 1
    assert capsys.readouterr().out == f"{path}:2:6: invalid YAML: mapping values are not allowed here\n"


def test_validate_command_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_command(str(tmp_path / "nope.yaml")) == 1
    assert capsys.readouterr().out == f"{tmp_path / 'nope.yaml'}: file not found\n"


# --- pasted AWS mappings ---


def test_pasted_kafka_mapping_with_all_aws_defaults_loads() -> None:
    loaded = parse_config(with_functions(PASTED_KAFKA_MAPPING))
    mapping = loaded.config.EventSourceMappings[0]
    assert mapping.function_name == "orders"
    assert mapping.uuid == "14e0db71-5d35-4eb5-b481-8945cf9d10c2"
    assert mapping.starting_position is StartingPosition.LATEST
    assert mapping.batching_window_seconds == 0  # given explicitly, not the Kafka default
    assert mapping.source == KafkaSource(
        ("b-1.example.com:9092", "b-2.example.com:9092"), "orders", "orders-consumers"
    )
    assert loaded.warnings == [
        "EventSourceMappings[0].ProvisionedPollerConfig: ignored, AWS-only setting "
        "(esm sizes its pollers with `esm run --processes`)",
        "EventSourceMappings[0].SourceAccessConfigurations: ignored, AWS-only setting "
        "(Kafka credentials go in KafkaConsumerConfig (sasl.*, ssl.*))",
    ]


@pytest.mark.parametrize(
    "setting",
    [
        ("ProvisionedPollerConfig", {"MinimumPollers": 1}),
        ("ScalingConfig", {"MaximumConcurrency": 2}),
        ("KMSKeyArn", "arn:aws:kms:us-east-1:123456789012:key/k"),
        ("SourceAccessConfigurations", [{"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:x"}]),
        ("Tags", {"team": "orders"}),
        ("AmazonManagedKafkaEventSourceConfig", {}),
        ("DocumentDBEventSourceConfig", {"DatabaseName": "db"}),
        ("Queues", ["q"]),
    ],
)
def test_aws_only_settings_load_with_a_warning(setting: tuple[str, object]) -> None:
    name, value = setting
    loaded = parse_config(build_config({name: value}))
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"EventSourceMappings[0].{name}: ignored, AWS-only setting (")


def recorded_create_responses() -> list[tuple[str, dict[str, Any]]]:
    """Every `create_event_source_mapping_response` recorded against AWS, placeholders filled in."""

    def fill(text: str) -> str:
        text = text.replace("<partition>", "aws").replace("<region>", "us-east-1")
        text = re.sub(r"<resource:(\d+)>", r"resource-\1", text)
        return re.sub(r"<uuid:(\d+)>", lambda m: f"00000000-0000-4000-8000-{int(m.group(1)):012d}", text)

    found = []
    for path in recorded_fixtures():
        for scenario, recorded in json.loads(fill(path.read_text())).items():
            response = recorded["recorded-content"].get("create_event_source_mapping_response")
            if response is not None:
                found.append((f"{path.stem}::{scenario.split('::')[-1]}", response))
    return found


RECORDED_RESPONSES = recorded_create_responses()


def test_recorded_responses_are_present() -> None:
    assert len(RECORDED_RESPONSES) >= 30


@pytest.mark.parametrize(("scenario", "response"), RECORDED_RESPONSES, ids=[s for s, _ in RECORDED_RESPONSES])
def test_recorded_aws_response_loads_unchanged(scenario: str, response: dict[str, Any]) -> None:
    destination = (response.get("DestinationConfig", {}).get("OnFailure") or {}).get("Destination")
    if "<approximate-creation-datetime>" in json.dumps(response.get("FilterCriteria")):
        pytest.skip("the recording replaced this filter pattern with a placeholder")
    if destination is not None and destination.startswith(("arn:aws:sqs:", "arn:aws:sns:", "arn:aws:s3:")):
        # AWS-hosted destinations are the one thing esm cannot take over (see README).
        with pytest.raises(ConfigError) as caught:
            parse_config(with_functions(response))
        assert len(caught.value.problems) == 1
        assert caught.value.problems[0].startswith(
            "EventSourceMappings[0].DestinationConfig.OnFailure.Destination: "
        )
        return
    mapping = parse_config(with_functions(response)).config.EventSourceMappings[0]
    assert mapping.EventSourceArn == response["EventSourceArn"]
    assert mapping.uuid == response["UUID"]
    for field in ("BatchSize", "ParallelizationFactor", "TumblingWindowInSeconds", "MaximumRetryAttempts"):
        if field in response:
            assert getattr(mapping, field) == response[field], field
