"""Every problem a config can have, with its place, through `parse_config` (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from esm.config import ConfigError, EsmConfig, KafkaSource, parse_config

from .conftest import ConfigBuilder, build_config

KINESIS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
DYNAMODB_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/Orders/stream/2024-01-01T00:00:00.000"
MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/prod/abc-123"
M0 = "EventSourceMappings[0]"
ONE_SOURCE = "needs exactly one event source: SelfManagedEventSource (with Topics) or EventSourceArn"


def problems_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_minimal_config_loads_with_defaults(config_data: ConfigBuilder) -> None:
    loaded = parse_config(config_data())
    config = loaded.config
    assert loaded.warnings == []
    assert config.Store == "sqlite:///esm-state.db"
    assert (config.Metrics.Port, config.Metrics.Host) == (9108, "0.0.0.0")
    assert config.ShutdownGracePeriodSeconds == 30
    function = config.function("orders")
    assert (function.Timeout, function.MemorySize, function.ReservedConcurrentExecutions) == (3, 128, None)
    assert function.endpoints == ("127.0.0.1:50051",)


def test_function_lookup_of_unknown_name_raises(config_data: ConfigBuilder) -> None:
    with pytest.raises(KeyError, match="payments"):
        parse_config(config_data()).config.function("payments")


@pytest.mark.parametrize(
    ("top_level", "expected"),
    [
        ({"Store": "sqlite:////var/lib/esm/state.db"}, "sqlite:////var/lib/esm/state.db"),
        ({"Store": "redis://127.0.0.1:6379/2"}, "redis://127.0.0.1:6379/2"),
        ({"Store": "redis://127.0.0.1:6379/2?prefix=team-a"}, "redis://127.0.0.1:6379/2?prefix=team-a"),
        ({"Metrics": {"Port": None}}, None),
    ],
)
def test_top_level_settings(config_data: ConfigBuilder, top_level: dict[str, Any], expected: object) -> None:
    config = parse_config({**config_data(), **top_level}).config
    assert expected in (config.Store, config.Metrics.Port)


@pytest.mark.parametrize(
    ("top_level", "problem"),
    [
        (
            {"Store": "mysql://db"},
            "Store: expected sqlite:///PATH (sqlite:////abs/path.db for an absolute path) "
            "or redis://HOST:PORT/DB[?prefix=NAME] (rediss:// for TLS, with ssl_* parameters), got 'mysql://db'",
        ),
        ({"Store": "redis://h:99999/0"}, "Store: expected sqlite:///PATH"),
        ({"Store": "redis://h:6379/0?db=1"}, "Store: expected sqlite:///PATH"),
        ({"Store": "redis://h:6379/0?prefix="}, "Store: expected sqlite:///PATH"),
        ({"Metrics": {"Port": 0}}, "Metrics.Port: must be between 1 and 65535, got 0"),
        ({"Metrics": {"Prot": 1}}, "Metrics: unknown field 'Prot'; did you mean 'Port'?"),
        ({"ShutdownGracePeriodSeconds": 0}, "ShutdownGracePeriodSeconds: must be greater than 0, got 0"),
        ({"Fucntions": []}, "<config>: unknown field 'Fucntions'; did you mean 'Functions'?"),
        ({"Functions": "orders"}, "Functions: expected a list, got 'orders'"),
    ],
)
def test_top_level_problems(config_data: ConfigBuilder, top_level: dict[str, Any], problem: str) -> None:
    found = problems_of({**config_data(), **top_level})
    assert len(found) == 1, found
    assert found[0].startswith(problem)


def test_non_mapping_document() -> None:
    assert problems_of(["x"]) == ["<config>: expected a mapping, got a list"]


@pytest.mark.parametrize(
    ("function_changes", "problem"),
    [
        ({"Endpoints": ["localhost"]}, "Functions[0].Endpoints[0]: expected host:port, got 'localhost'"),
        (
            {"Endpoints": ["h:0"]},
            "Functions[0].Endpoints[0]: port must be between 1 and 65535, got 0 in 'h:0'",
        ),
        ({"Endpoints": []}, "Functions[0].Endpoints: must list at least one host:port endpoint"),
        ({"Endpoints": None}, "Functions[0].Endpoints: expected a list, got null"),
        ({"Timeout": 901}, "Functions[0].Timeout: must be between 1 and 900, got 901"),
        ({"Timeout": 2.5}, "Functions[0].Timeout: expected an integer, got 2.5"),
        ({"MemorySize": 64}, "Functions[0].MemorySize: must be between 128 and 10240, got 64"),
        (
            {"ReservedConcurrentExecutions": 0},
            "Functions[0].ReservedConcurrentExecutions: must be between 1 and",
        ),
        ({"FunctionName": "my function"}, "Functions[0].FunctionName: expected a function name"),
        ({"Timeuot": 3}, "Functions[0]: unknown field 'Timeuot'; did you mean 'Timeout'?"),
        ({"Role": "my-role"}, "Functions[0].Role: expected an IAM role ARN"),
        ({"Role": "arn:aws:iam::123:role/r"}, "Functions[0].Role: expected an IAM role ARN"),
    ],
)
def test_function_problems(function_changes: dict[str, Any], problem: str) -> None:
    found = problems_of(build_config(function_changes=function_changes))
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


def test_function_role_is_an_iam_role_arn() -> None:
    role = "arn:aws:iam::123456789012:role/service-role/orders-role"
    config = parse_config(build_config(function_changes={"Role": role})).config
    assert config.Functions[0].Role == role


def test_missing_function_endpoints_is_required() -> None:
    data = build_config()
    del data["Functions"][0]["Endpoints"]
    assert problems_of(data) == ["Functions[0].Endpoints: is required"]


@pytest.mark.parametrize(
    ("changes", "drop", "problem"),
    [
        ({"BatchSize": 20000}, (), f"{M0}.BatchSize: must be between 1 and 10000, got 20000"),
        ({"BatchSize": 0}, (), f"{M0}.BatchSize: must be between 1 and 10000, got 0"),
        ({"BatchSize": "100"}, (), f"{M0}.BatchSize: expected an integer, got '100'"),
        ({"BatchSzie": 10}, (), f"{M0}: unknown field 'BatchSzie'; did you mean 'BatchSize'?"),
        (
            {"MaximumBatchingWindowInSeconds": 301},
            (),
            f"{M0}.MaximumBatchingWindowInSeconds: must be between 0 and 300, got 301",
        ),
        (
            {"MaximumBatchingWindowInSeconds": True},
            (),
            f"{M0}.MaximumBatchingWindowInSeconds: expected a number, got true",
        ),
        (
            {"StartingPosition": "FOO"},
            (),
            f"{M0}.StartingPosition: must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, got 'FOO'",
        ),
        (
            {"StartingPosition": "latest"},
            (),
            f"{M0}.StartingPosition: must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, got 'latest'",
        ),
        ({}, ("StartingPosition",), f"{M0}.StartingPosition: is required"),
        (
            {"StartingPosition": "AT_TIMESTAMP"},
            (),
            f"{M0}.StartingPositionTimestamp: is required with StartingPosition AT_TIMESTAMP",
        ),
        (
            {"StartingPositionTimestamp": 1700000000},
            (),
            f"{M0}.StartingPositionTimestamp: is only allowed with StartingPosition AT_TIMESTAMP",
        ),
        (
            {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": "yesterday"},
            (),
            f"{M0}.StartingPositionTimestamp: expected epoch seconds or an ISO-8601 time, got 'yesterday'",
        ),
        ({"Enabled": "yes"}, (), f"{M0}.Enabled: expected true or false, got 'yes'"),
        ({"Enabled": 1}, (), f"{M0}.Enabled: expected true or false, got 1"),
        ({"Topics": ["a", "b"]}, (), f"{M0}.Topics: must list exactly one topic, as in AWS, got 2"),
        ({"Topics": ["bad topic"]}, (), f"{M0}.Topics[0]: expected a Kafka topic name"),
        ({}, ("Topics",), f"{M0}.Topics: is required with SelfManagedEventSource"),
        (
            {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["broker"]}}},
            (),
            f"{M0}.SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[0]: "
            "expected host:port, got 'broker'",
        ),
        (
            {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": []}}},
            (),
            f"{M0}.SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS: "
            "must list at least one host:port broker",
        ),
        (
            {"SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "has space"}},
            (),
            f"{M0}.SelfManagedKafkaEventSourceConfig.ConsumerGroupId: expected a consumer group id",
        ),
        (
            {},
            ("SelfManagedEventSource", "Topics"),
            f"{M0}: {ONE_SOURCE}, got none",
        ),
        ({"FunctionName": "my function"}, (), f"{M0}.FunctionName: expected a function name"),
        ({}, ("FunctionName",), f"{M0}.FunctionName: is required (a function name or ARN)"),
        (
            {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:payments"},
            (),
            f"{M0}.FunctionArn: names a different function than FunctionName 'orders'",
        ),
        (
            {"FunctionName": "payments"},
            (),
            f"{M0}.FunctionName: function 'payments' is not defined in Functions",
        ),
        ({"UUID": "not-a-uuid"}, (), f"{M0}.UUID: expected a UUID such as"),
        (
            {"KafkaConsumerConfig": {"sesion.timeout.ms": 1500}},
            (),
            f"{M0}.KafkaConsumerConfig['sesion.timeout.ms']: unknown Kafka consumer property",
        ),
        (
            {"KafkaConsumerConfig": {"group.id": "g"}},
            (),
            f"{M0}.KafkaConsumerConfig['group.id']: is set by esm",
        ),
        (
            {"KafkaConsumerConfig": {"sasl.jaas.config": "x"}},
            (),
            f"{M0}.KafkaConsumerConfig['sasl.jaas.config']: is not supported (kafka-python has no JAAS)",
        ),
        (
            {"AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g"}},
            (),
            f"{M0}.AmazonManagedKafkaEventSourceConfig: "
            "applies to Amazon MSK sources, which are not supported yet",
        ),
    ],
)
def test_mapping_problems(changes: dict[str, Any], drop: tuple[str, ...], problem: str) -> None:
    found = problems_of(build_config(changes, drop=drop))
    assert len(found) == 1, found
    assert found[0].startswith(problem), found


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"MaximumRetryAttempts": 10001},
            "MaximumRetryAttempts: must be -1 or between 0 and 10000, got 10001",
        ),
        ({"MaximumRetryAttempts": -2}, "MaximumRetryAttempts: must be -1 or between 0 and 10000, got -2"),
        (
            {"MaximumRecordAgeInSeconds": 59},
            "MaximumRecordAgeInSeconds: must be -1 or between 60 and 604800, got 59",
        ),
        (
            {"BisectBatchOnFunctionError": "no"},
            "BisectBatchOnFunctionError: expected true or false, got 'no'",
        ),
        (
            {"FunctionResponseTypes": ["Other"]},
            "FunctionResponseTypes[0]: must be one of ReportBatchItemFailures, got 'Other'",
        ),
        (
            {"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}}},
            "DestinationConfig.OnFailure.Destination: ",
        ),
        (
            {"FilterCriteria": {"Filters": [{"Pattern": '{"value": {"a": [{"numeric": [">", "x"]}]}}'}]}},
            "FilterCriteria: Filters[0].Pattern.value.a",
        ),
        ({"ParallelizationFactor": 11}, "ParallelizationFactor: must be between 1 and 10, got 11"),
        (
            {"TumblingWindowInSeconds": 60},
            "TumblingWindowInSeconds: applies to Kinesis and DynamoDB Streams sources only",
        ),
        (
            {"PollingIntervalInSeconds": 0.1},
            "PollingIntervalInSeconds: applies to Kinesis and DynamoDB Streams sources only",
        ),
        ({"PollingIntervalInSeconds": 0}, "PollingIntervalInSeconds: must be between 0.01 and 60, got 0"),
        (
            {"IdlePollingIntervalInSeconds": 1.0},
            "IdlePollingIntervalInSeconds: applies to Kinesis and DynamoDB Streams sources only",
        ),
        (
            {"IdlePollingIntervalInSeconds": 61},
            "IdlePollingIntervalInSeconds: must be between 0.01 and 60, got 61",
        ),
        ({"TumblingWindowInSeconds": 901}, "TumblingWindowInSeconds: must be between 0 and 900, got 901"),
        ({"EventSourceArn": MSK_ARN}, "EventSourceArn: Amazon MSK event sources are not supported yet"),
        (
            {"EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q"},
            "EventSourceArn: expected a Kinesis stream",
        ),
    ],
)
def test_invalid_or_misplaced_parameters_and_sources(changes: dict[str, Any], problem: str) -> None:
    drop = ("SelfManagedEventSource", "Topics") if "EventSourceArn" in changes else ()
    found = problems_of(build_config(changes, drop=drop))
    assert len(found) == 1, found
    assert found[0].startswith(f"{M0}.{problem}")


@pytest.mark.parametrize("arn", [KINESIS_ARN, DYNAMODB_ARN])
def test_stream_sources_take_stream_settings(arn: str) -> None:
    data = build_config(
        {
            "EventSourceArn": arn,
            "ParallelizationFactor": 4,
            "TumblingWindowInSeconds": 60,
            "PollingIntervalInSeconds": 0.1,
        },
        drop=("SelfManagedEventSource", "Topics"),
    )
    mapping = parse_config(data).config.EventSourceMappings[0]
    assert (mapping.ParallelizationFactor, mapping.TumblingWindowInSeconds) == (4, 60)
    assert mapping.polling_interval_seconds == 0.1
    assert mapping.batching_window_seconds == 0.0


@pytest.mark.parametrize(
    ("changes", "interval", "idle"),
    [
        ({}, 0.2, 1.0),
        ({"IdlePollingIntervalInSeconds": 0.5}, 0.2, 0.5),
        # Equal to the polling interval: no idle back-off.
        ({"PollingIntervalInSeconds": 0.5, "IdlePollingIntervalInSeconds": 0.5}, 0.5, 0.5),
        # A polling interval above the default idle interval: that is the idle interval too.
        ({"PollingIntervalInSeconds": 2.0}, 2.0, 2.0),
    ],
)
def test_idle_polling_interval(changes: dict[str, Any], interval: float, idle: float) -> None:
    data = build_config({"EventSourceArn": KINESIS_ARN, **changes}, drop=("SelfManagedEventSource", "Topics"))
    mapping = parse_config(data).config.EventSourceMappings[0]
    assert (mapping.polling_interval_seconds, mapping.idle_polling_interval_seconds) == (interval, idle)


@pytest.mark.parametrize(
    ("changes", "interval"),
    [
        ({"IdlePollingIntervalInSeconds": 0.1}, "0.2"),
        ({"PollingIntervalInSeconds": 2.0, "IdlePollingIntervalInSeconds": 1.5}, "2"),
    ],
)
def test_an_idle_polling_interval_below_the_polling_interval_is_an_error(
    changes: dict[str, Any], interval: str
) -> None:
    data = build_config(
        {"EventSourceArn": DYNAMODB_ARN, **changes}, drop=("SelfManagedEventSource", "Topics")
    )
    idle = changes["IdlePollingIntervalInSeconds"]
    assert problems_of(data) == [
        f"{M0}.IdlePollingIntervalInSeconds: must be at least PollingIntervalInSeconds ({interval}),"
        f" got {idle:g} (equal to it turns the idle back-off off)"
    ]


def test_two_sources_is_an_error() -> None:
    found = problems_of(build_config({"EventSourceArn": KINESIS_ARN}))
    assert f"{M0}: {ONE_SOURCE}, got both" in found


@pytest.mark.parametrize(
    "changes",
    [
        {
            "MaximumRetryAttempts": -1,
            "MaximumRecordAgeInSeconds": -1,
            "BisectBatchOnFunctionError": False,
            "FunctionResponseTypes": [],
            "ParallelizationFactor": 1,
            "TumblingWindowInSeconds": 0,
        },
        {"DestinationConfig": {}, "FilterCriteria": {}},
        {"DestinationConfig": {"OnFailure": {}}, "FilterCriteria": {"Filters": []}},
        {"DestinationConfig": {"OnFailure": {"Destination": None}}},
    ],
)
def test_restricted_parameters_accept_aws_defaults(changes: dict[str, Any]) -> None:
    mapping = parse_config(build_config(changes)).config.EventSourceMappings[0]
    assert mapping.MaximumRetryAttempts == -1


def test_kafka_only_settings_rejected_for_stream_sources() -> None:
    data = build_config(
        {"EventSourceArn": KINESIS_ARN, "KafkaConsumerConfig": {"client.id": "x"}},
        drop=("SelfManagedEventSource",),
    )
    assert problems_of(data) == [
        f"{M0}.Topics: applies to Kafka sources only",
        f"{M0}.KafkaConsumerConfig: applies to Kafka sources only",
    ]


def test_at_timestamp_is_rejected_for_dynamodb_streams() -> None:
    data = build_config(
        {"EventSourceArn": DYNAMODB_ARN, "StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1},
        drop=("SelfManagedEventSource", "Topics"),
    )
    assert (
        f"{M0}.StartingPosition: AT_TIMESTAMP is not available for DynamoDB Streams (as in AWS)"
        in problems_of(data)
    )


def two_mappings(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    data = build_config(first)
    data["EventSourceMappings"].append(build_config(second)["EventSourceMappings"][0])
    return data


def test_same_function_and_source_twice_is_an_error() -> None:
    data = two_mappings(
        {}, {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}}}
    )
    assert problems_of(data) == [
        "EventSourceMappings[1]: same function 'orders' and event source as EventSourceMappings[0]"
    ]


def test_duplicate_uuid_is_an_error() -> None:
    uuid = "14e0db71-5d35-4eb5-b481-8945cf9d10c2"
    data = two_mappings({"UUID": uuid}, {"UUID": uuid, "Topics": ["refunds"]})
    assert problems_of(data) == [
        f"EventSourceMappings[1].UUID: duplicate UUID '{uuid}', also EventSourceMappings[0]"
    ]


def test_duplicate_function_name_is_an_error() -> None:
    data = build_config()
    data["Functions"].append({"FunctionName": "orders", "Endpoints": ["127.0.0.1:50052"]})
    assert problems_of(data) == ["Functions[1].FunctionName: duplicate function 'orders', also Functions[0]"]


def test_two_mappings_to_different_topics_load_with_distinct_uuids() -> None:
    config = parse_config(two_mappings({}, {"Topics": ["refunds"]})).config
    first, second = config.EventSourceMappings
    assert first.uuid != second.uuid


def test_function_without_mapping_is_fine() -> None:
    data = build_config()
    data["Functions"].append({"FunctionName": "idle", "Endpoints": ["127.0.0.1:50052"]})
    assert parse_config(data).config.function("idle").name == "idle"


def test_all_problems_are_collected_in_one_pass() -> None:
    data = build_config(
        {"BatchSize": 20000, "BatchSzie": 1, "StartingPosition": "FOO", "ParallelizationFactor": 11},
        function_changes={"Endpoints": ["localhost"]},
        drop=("Topics",),
    )
    data["Store"] = "mysql://db"
    data["EventSourceMappings"].append(
        build_config({"FunctionName": "ghost", "Topics": ["t"]})["EventSourceMappings"][0]
    )
    found = problems_of(data)
    assert found == [
        "Store: expected sqlite:///PATH (sqlite:////abs/path.db for an absolute path) "
        "or redis://HOST:PORT/DB[?prefix=NAME] (rediss:// for TLS, with ssl_* parameters), got 'mysql://db'",
        "Functions[0].Endpoints[0]: expected host:port, got 'localhost'",
        f"{M0}.StartingPosition: must be one of TRIM_HORIZON, LATEST, AT_TIMESTAMP, got 'FOO'",
        f"{M0}.BatchSize: must be between 1 and 10000, got 20000",
        f"{M0}.ParallelizationFactor: must be between 1 and 10, got 11",
        f"{M0}: unknown field 'BatchSzie'; did you mean 'BatchSize'?",
        f"{M0}.Topics: is required with SelfManagedEventSource",
        "EventSourceMappings[1].FunctionName: function 'ghost' is not defined in Functions",
    ]


def test_messages_carry_no_pydantic_wording() -> None:
    data = build_config({"BatchSize": "x", "Enabled": "x", "Bogus": 1})
    text = "\n".join(problems_of(data))
    assert "pydantic" not in text
    assert "Input should" not in text
    assert "http" not in text


def test_model_validate_directly_gives_same_guarantees() -> None:
    with pytest.raises(ValueError, match="not defined in Functions"):
        EsmConfig.model_validate(build_config({"FunctionName": "ghost"}))


def test_kafka_takes_a_parallelization_factor() -> None:
    """An esm extension for Kafka: batches in flight per partition, spread by record key."""
    config = parse_config(build_config({"ParallelizationFactor": 10})).config
    assert isinstance(config.EventSourceMappings[0].source, KafkaSource)
    assert config.EventSourceMappings[0].ParallelizationFactor == 10
