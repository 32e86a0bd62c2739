"""The control API served for real and called with boto3's own `lambda` client: Lambda's shapes,
states and errors, SigV4 refusals. (Mappings actually running is tests/integration/test_control_api.py.)"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from esm.config import parse_config
from esm.control.server import ControlApiError, ControlApiServer
from esm.control.service import FileMappings

KEY_ID, SECRET = "AKIAESMCONTROLTEST01", "not-a-real-secret-but-long-enough"
KAFKA = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9"]}}
STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"


def config_data(store_url: str, port: int = 0) -> dict[str, Any]:
    return {
        "Store": store_url,
        "Functions": [
            {
                "FunctionName": "orders",
                "Endpoints": ["127.0.0.1:1"],
                "Timeout": 30,
                "ReservedConcurrentExecutions": 4,
            },
            {"FunctionName": "audit", "Endpoints": ["127.0.0.1:2"], "MemorySize": 256},
        ],
        "EventSourceMappings": [
            {
                "FunctionName": "audit",
                "SelfManagedEventSource": KAFKA,
                "Topics": ["from-the-file"],
                "StartingPosition": "LATEST",
            }
        ],
        "ControlApi": {
            "Port": port,
            "AccessKeys": [{"AccessKeyId": KEY_ID, "SecretAccessKeyEnv": "ESM_TEST_SECRET"}],
        },
    }


@pytest.fixture
def api(sqlite_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlApiServer]:
    monkeypatch.setenv("ESM_TEST_SECRET", SECRET)
    config = parse_config(config_data(sqlite_store_url)).config
    assert config.ControlApi is not None
    server = ControlApiServer(
        config.ControlApi,
        config,
        FileMappings(str(tmp_path / "esm.yaml"), config.EventSourceMappings, 1765000000.0),
    )
    server.start()
    yield server
    server.stop()


def client(
    api: ControlApiServer, secret: str = SECRET, key_id: str = KEY_ID, region: str = "us-east-1"
) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{api.port}",
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )


def kafka_mapping(topic: str = "orders", **extra: Any) -> dict[str, Any]:
    return {
        "FunctionName": "orders",
        "SelfManagedEventSource": KAFKA,
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        **extra,
    }


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_create_get_list_update_and_delete_move_through_lambdas_states(api: ControlApiServer) -> None:
    aws = client(api)
    created = aws.create_event_source_mapping(**kafka_mapping(BatchSize=50))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = created["UUID"]
    assert created["State"] == "Creating" and created["StateTransitionReason"] == "User action"
    assert created["BatchSize"] == 50 and created["Topics"] == ["orders"]
    assert created["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": uuid}  # Lambda's default
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:orders"
    assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{uuid}")
    assert created["LastProcessingResult"] == "No records processed"
    assert created["LastModified"].year >= 2026  # a timestamp boto3 parsed

    fetched = aws.get_event_source_mapping(UUID=uuid)
    assert {k: v for k, v in fetched.items() if k != "ResponseMetadata"} == {
        k: v for k, v in created.items() if k != "ResponseMetadata"
    }

    updated = aws.update_event_source_mapping(UUID=uuid, BatchSize=7, MaximumRetryAttempts=2)
    assert (updated["State"], updated["BatchSize"], updated["MaximumRetryAttempts"]) == ("Updating", 7, 2)
    disabled = aws.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert disabled["State"] == "Disabling" and disabled["BatchSize"] == 7  # earlier changes kept

    listed = aws.list_event_source_mappings()["EventSourceMappings"]
    assert {m["UUID"] for m in listed} == {uuid, file_mapping_uuid(aws)}

    deleted = aws.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    with pytest.raises(ClientError) as caught:
        aws.delete_event_source_mapping(UUID=uuid)
    assert error_of(caught)[:2] == ("ResourceInUseException", 400)


def file_mapping_uuid(aws: Any) -> str:
    (found,) = aws.list_event_source_mappings(FunctionName="audit")["EventSourceMappings"]
    return str(found["UUID"])


def test_the_config_files_mappings_are_read_but_never_changed(api: ControlApiServer) -> None:
    aws = client(api)
    (found,) = aws.list_event_source_mappings(FunctionName="audit")["EventSourceMappings"]
    assert found["State"] == "Enabled" and found["Topics"] == ["from-the-file"]
    assert "esm.yaml" in found["StateTransitionReason"]
    assert aws.get_event_source_mapping(UUID=found["UUID"])["UUID"] == found["UUID"]
    for change in (
        lambda: aws.update_event_source_mapping(UUID=found["UUID"], BatchSize=5),
        lambda: aws.delete_event_source_mapping(UUID=found["UUID"]),
    ):
        with pytest.raises(ClientError) as caught:
            change()
        code, status, message = error_of(caught)
        assert (code, status) == ("ResourceConflictException", 409)
        assert "esm.yaml" in message and "change the file and restart" in message


def test_list_filters_and_pages(api: ControlApiServer) -> None:
    aws = client(api)
    uuids = {aws.create_event_source_mapping(**kafka_mapping(f"t{n}"))["UUID"] for n in range(5)}
    stream = aws.create_event_source_mapping(
        FunctionName="orders", EventSourceArn=STREAM_ARN, StartingPosition="LATEST"
    )
    assert stream["ParallelizationFactor"] == 1 and stream["TumblingWindowInSeconds"] == 0
    by_arn = aws.list_event_source_mappings(EventSourceArn=STREAM_ARN)["EventSourceMappings"]
    assert [m["UUID"] for m in by_arn] == [stream["UUID"]]
    paged = [
        m["UUID"]
        for page in aws.get_paginator("list_event_source_mappings").paginate(
            FunctionName="arn:aws:lambda:us-east-1:000000000000:function:orders",
            PaginationConfig={"PageSize": 2},
        )
        for m in page["EventSourceMappings"]
    ]
    assert sorted(paged) == sorted(uuids | {stream["UUID"]})
    assert len(paged) == len(set(paged))


@pytest.mark.parametrize(
    ("call", "code", "status", "words"),
    [
        (
            lambda aws: aws.get_event_source_mapping(UUID="0b6f5c5e-0000-4000-8000-00000000dead"),
            "ResourceNotFoundException",
            404,
            "does not exist",
        ),
        (
            lambda aws: aws.create_event_source_mapping(**{**kafka_mapping(), "FunctionName": "nope"}),
            "ResourceNotFoundException",
            404,
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope",
        ),
        (
            lambda aws: aws.create_event_source_mapping(**kafka_mapping(BatchSize=20000)),
            "InvalidParameterValueException",
            400,
            "BatchSize: must be between 1 and 10000, got 20000",
        ),
        (
            lambda aws: aws.create_event_source_mapping(**kafka_mapping(TumblingWindowInSeconds=60)),
            "InvalidParameterValueException",
            400,
            "TumblingWindowInSeconds: applies to Kinesis and DynamoDB Streams sources only",
        ),
        (
            lambda aws: aws.create_event_source_mapping(FunctionName="orders", StartingPosition="LATEST"),
            "InvalidParameterValueException",
            400,
            "request",
        ),
        (
            lambda aws: aws.update_event_source_mapping(
                UUID="0b6f5c5e-0000-4000-8000-00000000dead", BatchSize=5
            ),
            "ResourceNotFoundException",
            404,
            "does not exist",
        ),
        (
            lambda aws: aws.get_function(FunctionName="nope"),
            "ResourceNotFoundException",
            404,
            "Function not found",
        ),
    ],
    ids=[
        "unknown uuid",
        "unknown function",
        "batch size",
        "stream-only field",
        "no source",
        "update unknown",
        "get unknown function",
    ],
)
def test_bad_requests_get_lambdas_error_for_them(
    api: ControlApiServer, call: Any, code: str, status: int, words: str
) -> None:
    with pytest.raises(ClientError) as caught:
        call(client(api))
    got_code, got_status, message = error_of(caught)
    assert (got_code, got_status) == (code, status)
    assert words in message
    assert client(api).list_event_source_mappings()["EventSourceMappings"][0][
        "FunctionArn"
    ]  # nothing half-applied


def test_one_mapping_per_function_and_source(api: ControlApiServer) -> None:
    aws = client(api)
    first = aws.create_event_source_mapping(
        FunctionName="orders", EventSourceArn=STREAM_ARN, StartingPosition="LATEST"
    )
    with pytest.raises(ClientError) as caught:
        aws.create_event_source_mapping(
            FunctionName="orders", EventSourceArn=STREAM_ARN, StartingPosition="LATEST"
        )
    code, status, message = error_of(caught)
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == (
        f'The event source arn (" {STREAM_ARN} ") and function (" orders ") provided mapping already exists. '
        f"Please update or delete the existing mapping with UUID {first['UUID']}"
    )


def test_functions_are_read_as_lambda_shows_them(api: ControlApiServer) -> None:
    aws = client(api)
    got = aws.get_function(FunctionName="orders")
    assert got["Configuration"]["FunctionName"] == "orders"
    assert got["Configuration"]["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:orders"
    assert (got["Configuration"]["Timeout"], got["Configuration"]["MemorySize"]) == (30, 128)
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 4}
    names = [
        f["FunctionName"]
        for page in aws.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1})
        for f in page["Functions"]
    ]
    assert names == ["audit", "orders"]


@pytest.mark.parametrize(
    ("make_client", "code"),
    [
        (lambda api: client(api, secret="wrong-secret"), "InvalidSignatureException"),
        (lambda api: client(api, key_id="AKIAUNKNOWNKEY000001"), "UnrecognizedClientException"),
        (lambda api: client(api, region="eu-west-1"), "InvalidSignatureException"),
    ],
    ids=["wrong secret", "unknown key", "wrong region"],
)
def test_badly_signed_requests_are_refused(api: ControlApiServer, make_client: Any, code: str) -> None:
    with pytest.raises(ClientError) as caught:
        make_client(api).list_event_source_mappings()
    got_code, status, message = error_of(caught)
    assert (got_code, status) == (code, 403)
    assert SECRET not in message


def test_an_unsigned_request_is_refused(api: ControlApiServer) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{api.port}/2015-03-31/event-source-mappings")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 403
    assert caught.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(caught.value.read())["message"] == "Missing Authentication Token"


def test_a_missing_secret_variable_stops_start_up_naming_it(
    sqlite_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ESM_TEST_SECRET", raising=False)
    config = parse_config(config_data(sqlite_store_url)).config
    assert config.ControlApi is not None
    with pytest.raises(ControlApiError, match="ESM_TEST_SECRET"):
        ControlApiServer(config.ControlApi, config, FileMappings("esm.yaml", (), 0.0))


def test_https_with_the_configured_certificate(
    sqlite_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("ESM_TEST_SECRET", SECRET)
    data = config_data(sqlite_store_url)
    data["ControlApi"].update(CertFile=str(cert), KeyFile=str(key))
    config = parse_config(data).config
    assert config.ControlApi is not None
    server = ControlApiServer(
        config.ControlApi, config, FileMappings("esm.yaml", config.EventSourceMappings, 0.0)
    )
    server.start()
    try:
        aws = boto3.client(
            "lambda",
            endpoint_url=f"https://127.0.0.1:{server.port}",
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            verify=str(cert),
        )
        assert [f["FunctionName"] for f in aws.list_functions()["Functions"]] == ["audit", "orders"]
        plain = urllib.request.Request(f"http://127.0.0.1:{server.port}/2015-03-31/functions")
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(plain, timeout=5)  # no plain HTTP on an HTTPS port
    finally:
        server.stop()
