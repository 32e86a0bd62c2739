"""aws_region's precedence, the client settings, and boto3 (1.44) taking the endpoints from the
standard environment: resolved per service without any network, then used against the emulators."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from stream_services import DynamoDBLocal, KinesisMock, create_table, wait_stream_active

from esm.sources.aws_clients import aws_client, aws_region

ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KINESIS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with no AWS setting but dummy credentials, and no config files."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return monkeypatch


@pytest.mark.parametrize(
    ("environ", "arn_region", "expected"),
    [
        ({}, "eu-west-1", "eu-west-1"),
        ({}, "ddblocal", "ddblocal"),
        ({"AWS_DEFAULT_REGION": "us-east-2"}, "eu-west-1", "us-east-2"),
        ({"AWS_REGION": "ap-south-1"}, "eu-west-1", "ap-south-1"),
        ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-east-2"}, "eu-west-1", "ap-south-1"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-2"}, "eu-west-1", "us-east-2"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "eu-west-1", "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-east-2"}, "", "us-east-2"),
    ],
)
def test_aws_region_precedence(environ: dict[str, str], arn_region: str, expected: str) -> None:
    assert aws_region(arn_region, environ) == expected


def test_aws_region_without_any_region_is_an_error() -> None:
    with pytest.raises(ValueError, match="AWS_REGION"):
        aws_region("", {"AWS_REGION": ""})


def test_aws_region_reads_the_process_environment(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_REGION", "sa-east-1")
    assert aws_region("eu-west-1") == "sa-east-1"


def test_aws_client_rejects_other_services() -> None:
    with pytest.raises(ValueError, match="'sqs'"):
        aws_client("sqs", "us-east-1")


def test_aws_client_rejects_an_empty_pool() -> None:
    with pytest.raises(ValueError, match="max_pool_connections"):
        aws_client("kinesis", "us-east-1", max_pool_connections=0)


def test_aws_client_settings(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_DEFAULT_REGION", "us-east-2")
    client = aws_client("dynamodbstreams", "eu-west-1", max_pool_connections=7)
    config = client.meta.config
    assert client.meta.region_name == "us-east-2"
    assert config.max_pool_connections == 7
    assert (config.connect_timeout, config.read_timeout) == (5.0, 20.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


@pytest.mark.parametrize(
    ("service", "environ", "expected"),
    [
        ("kinesis", {"AWS_ENDPOINT_URL_KINESIS": "http://kinesis.test:1"}, "http://kinesis.test:1"),
        (
            "dynamodbstreams",
            {"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": "http://streams.test:2"},
            "http://streams.test:2",
        ),
        ("dynamodb", {"AWS_ENDPOINT_URL_DYNAMODB": "http://ddb.test:3"}, "http://ddb.test:3"),
        # The general variable serves every service...
        ("dynamodbstreams", {"AWS_ENDPOINT_URL": "http://all.test:4"}, "http://all.test:4"),
        # ...unless the service has its own.
        (
            "kinesis",
            {"AWS_ENDPOINT_URL": "http://all.test:4", "AWS_ENDPOINT_URL_KINESIS": "http://kinesis.test:1"},
            "http://kinesis.test:1",
        ),
        # DynamoDB's variable does not leak into DynamoDB Streams.
        ("dynamodbstreams", {"AWS_ENDPOINT_URL_DYNAMODB": "http://ddb.test:3"}, None),
    ],
)
def test_boto3_takes_the_endpoint_from_the_environment(
    aws_env: pytest.MonkeyPatch, service: str, environ: dict[str, str], expected: str | None
) -> None:
    for name, value in environ.items():
        aws_env.setenv(name, value)
    endpoint = aws_client(service, "us-east-1").meta.endpoint_url
    if expected is None:
        assert endpoint.endswith(".amazonaws.com"), endpoint
    else:
        assert endpoint == expected, (
            f"boto3 ignored {sorted(environ)}: the stream sources rely on it for their endpoints"
        )


def test_kinesis_client_reaches_kinesis_mock(aws_env: pytest.MonkeyPatch, kinesis_mock: KinesisMock) -> None:
    name = f"s-{uuid.uuid4().hex[:10]}"
    admin: Any = kinesis_mock.client()
    admin.create_stream(StreamName=name, ShardCount=1)
    try:
        wait_stream_active(admin, name)
        aws_env.setenv("AWS_ENDPOINT_URL_KINESIS", kinesis_mock.endpoint)
        aws_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: must not be used
        client = aws_client("kinesis", "us-east-1")
        assert name in client.list_streams(Limit=10000)["StreamNames"]
    finally:
        admin.delete_stream(StreamName=name)


def test_dynamodb_clients_reach_dynamodb_local(
    aws_env: pytest.MonkeyPatch, dynamodb_local: DynamoDBLocal
) -> None:
    aws_env.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    aws_env.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb_local.endpoint)
    aws_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: must not be used
    # DynamoDB Local's own region, taken from its ARNs: never checked against AWS's list.
    tables = aws_client("dynamodb", "ddblocal")
    streams = aws_client("dynamodbstreams", "ddblocal")
    created = create_table(tables, "KEYS_ONLY")
    name = created["TableName"]
    try:
        admin: Any = dynamodb_local.client()
        assert admin.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
        listed = streams.list_streams(TableName=name)["Streams"]
        assert [s["StreamArn"] for s in listed] == [created["LatestStreamArn"]]
    finally:
        tables.delete_table(TableName=name)
