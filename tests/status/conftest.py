"""DynamoDB Local for the status tests that resolve a table ARN: boto3 pointed at it through the
environment, as `esm status` is in production, and tables made per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from stream_services import CREDENTIALS, DynamoDBLocal, create_table


class Tables:
    """Creates tables with unique names on DynamoDB Local and deletes them afterwards."""

    def __init__(self, emulator: DynamoDBLocal) -> None:
        client: Any = emulator.client()
        self.client = client
        self.names: list[str] = []

    def create(self, with_stream: bool = True) -> dict[str, Any]:
        """The new table's TableDescription."""
        table: dict[str, Any] = create_table(self.client, "KEYS_ONLY" if with_stream else None)
        self.names.append(table["TableName"])
        return table


@pytest.fixture
def tables(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tables]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", CREDENTIALS["region_name"])
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    made = Tables(dynamodb_local)
    yield made
    for name in made.names:
        made.client.delete_table(TableName=name)
