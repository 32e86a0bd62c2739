"""Values no config can mean: NaN and infinities in any number field, and files too big to be a
config. Each is refused with a short problem naming the field (issue 10, item 6)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from esm.config import ConfigError, load_config, parse_config, validate_command
from esm.config.documents import MAX_CONFIG_BYTES

from .conftest import build_config

M0 = "EventSourceMappings[0]"
KINESIS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
NON_FINITE = [math.nan, math.inf, -math.inf]


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def with_top_level(field: str, value: float) -> dict[str, Any]:
    return {**build_config(), field: value}


def with_mapping(field: str, value: float) -> dict[str, Any]:
    changes: dict[str, Any] = {field: value}
    if field in ("PollingIntervalInSeconds", "IdlePollingIntervalInSeconds"):  # streams settings
        changes.update(EventSourceArn=KINESIS_ARN)
        return build_config(changes, drop=("SelfManagedEventSource", "Topics"))
    if field == "StartingPositionTimestamp":
        changes.update(StartingPosition="AT_TIMESTAMP")
    return build_config(changes)


# Every number field that takes fractions, and where it lives.
FLOAT_FIELDS = [
    (with_top_level, "ShutdownGracePeriodSeconds", "ShutdownGracePeriodSeconds"),
    (with_top_level, "LeaseDurationSeconds", "LeaseDurationSeconds"),
    (with_top_level, "ShardDiscoveryIntervalSeconds", "ShardDiscoveryIntervalSeconds"),
    (with_mapping, "MaximumBatchingWindowInSeconds", f"{M0}.MaximumBatchingWindowInSeconds"),
    (with_mapping, "MaximumRetryBackoffInSeconds", f"{M0}.MaximumRetryBackoffInSeconds"),
    (with_mapping, "PollingIntervalInSeconds", f"{M0}.PollingIntervalInSeconds"),
    (with_mapping, "IdlePollingIntervalInSeconds", f"{M0}.IdlePollingIntervalInSeconds"),
    (with_mapping, "StartingPositionTimestamp", f"{M0}.StartingPositionTimestamp"),
]


@pytest.mark.parametrize(("build", "field", "place"), FLOAT_FIELDS)
@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_naming_the_field(
    build: Any, field: str, place: str, value: float
) -> None:
    [found] = problems_of(build(field, value))
    assert found.startswith(f"{place}: "), found
    assert str(value) in found  # "got nan", "got inf", "got -inf"


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_non_finite_kafka_property_is_refused(value: float) -> None:
    [found] = problems_of(build_config({"KafkaConsumerConfig": {"consumer.timeout.ms": value}}))
    assert found.startswith(f"{M0}.KafkaConsumerConfig['consumer.timeout.ms']: "), found
    assert "finite" in found


def test_yaml_nan_and_inf_fail_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "esm.yaml"
    path.write_text(
        "ShutdownGracePeriodSeconds: .nan\nLeaseDurationSeconds: .inf\n"
        "Functions: []\nEventSourceMappings: []\n"
    )
    assert validate_command(str(path)) == 1
    assert capsys.readouterr().out.splitlines() == [
        "ShutdownGracePeriodSeconds: must be a finite number, got nan",
        "LeaseDurationSeconds: must be a finite number, got inf",
    ]


def test_a_timestamp_past_year_9999_is_refused() -> None:
    [found] = problems_of(with_mapping("StartingPositionTimestamp", 1e300))
    assert found.startswith(f"{M0}.StartingPositionTimestamp: expected epoch seconds"), found


def test_an_oversized_file_is_refused_in_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "esm.yaml"
    path.write_text("Functions: []\nEventSourceMappings: []\n# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: the file is larger than 4 MiB, the most a config may be"]


def test_a_huge_value_is_quoted_only_in_part(tmp_path: Path) -> None:
    path = tmp_path / "esm.yaml"
    path.write_text(f"Functions:\n  - FunctionName: {'x' * 3_000_000}\n    Endpoints: ['h:1']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [found] = caught.value.problems
    assert found.startswith("Functions[0].FunctionName: expected a function name"), found
    assert found.endswith("... (3000000 characters)")
    assert len(found) < 300
