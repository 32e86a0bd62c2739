"""boto3 clients for the stream sources (Kinesis, DynamoDB Streams, DynamoDB).

Only the region and the client's transport settings are chosen here. Endpoints and credentials
come from boto3's standard environment and config files, so one deployment setting points esm at
AWS, LocalStack or the local emulators: AWS_ENDPOINT_URL, or per service AWS_ENDPOINT_URL_KINESIS,
AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL_DYNAMODB (boto3 >= 1.28), and
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE / instance roles.

Region: AWS_REGION (which boto3 itself ignores), then AWS_DEFAULT_REGION, then the region named by
the source's ARN. Regions are never checked against a list (DynamoDB Local says `ddblocal`).

Every call builds its own `boto3.session.Session`: the default session is not thread-safe, while
a finished client may be shared by the threads that run the blocking reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3.session
from botocore.config import Config

from esm.sources.aws_json import DYNAMODB_STREAMS, KINESIS, AwsJsonClient, LeanGetRecords, proxied

# The boto3 service names the stream sources use.
STREAM_SERVICES = frozenset({"kinesis", "dynamodbstreams", "dynamodb"})

# GetRecords and the discovery calls answer within a second or two; a read that hangs longer is
# a dead connection, better retried than waited on.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 20.0
# botocore's "standard" mode retries throttles and transient errors with jittered backoff; what
# still fails after this many attempts in all reaches the readers' own error handling.
TOTAL_MAX_ATTEMPTS = 3


def aws_region(arn_region: str, environ: Mapping[str, str] | None = None) -> str:
    """The region a client for a source in `arn_region` uses (see the module docstring)."""
    env = os.environ if environ is None else environ
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or arn_region
    if not region:
        raise ValueError(
            "no AWS region: the source ARN names none and neither AWS_REGION nor AWS_DEFAULT_REGION is set"
        )
    return region


@dataclass(frozen=True)
class CallBounds:
    """How long a client waits for AWS: per connection, per read, and attempts in all."""

    connect_timeout_s: float = CONNECT_TIMEOUT_SECONDS
    read_timeout_s: float = READ_TIMEOUT_SECONDS
    total_max_attempts: int = TOTAL_MAX_ATTEMPTS


STANDARD = CallBounds()
# For a person waiting on a command (`esm status`): an answer within seconds, whatever is down.
QUICK = CallBounds(connect_timeout_s=2.0, read_timeout_s=3.0, total_max_attempts=1)


def aws_client(
    service: str,
    arn_region: str,
    *,
    max_pool_connections: int = 64,
    bounds: CallBounds = STANDARD,
    session: boto3.session.Session | None = None,
) -> Any:
    """A boto3 client of `service` ("kinesis", "dynamodbstreams" or "dynamodb") for a source in
    `arn_region`. `max_pool_connections` bounds the HTTP connections its threads share."""
    if service not in STREAM_SERVICES:
        raise ValueError(
            f"aws_client: unsupported service {service!r}, expected one of {sorted(STREAM_SERVICES)}"
        )
    if max_pool_connections < 1:
        raise ValueError(f"aws_client: max_pool_connections must be at least 1, got {max_pool_connections}")
    config = Config(
        max_pool_connections=max_pool_connections,
        connect_timeout=bounds.connect_timeout_s,
        read_timeout=bounds.read_timeout_s,
        # Not Config's "max_attempts": that one counts retries only (3 would mean 4 attempts).
        retries={"mode": "standard", "total_max_attempts": bounds.total_max_attempts},
    )
    if session is None:
        session = boto3.session.Session()
    return session.client(service, region_name=aws_region(arn_region), config=config)


# GetRecords over the lean JSON client (esm.sources.aws_json) by default; "botocore" sends it
# through boto3 like every other call (a fallback should an endpoint need what only botocore does).
GET_RECORDS_CLIENT_ENV = "ESM_AWS_GETRECORDS"
_JSON_PROTOCOLS = {"kinesis": KINESIS, "dynamodbstreams": DYNAMODB_STREAMS}


def stream_reader_client(service: str, arn_region: str, *, max_pool_connections: int = 64) -> Any:
    """The client the shard readers of `service` ("kinesis" or "dynamodbstreams") use: boto3's,
    with GetRecords sent by `AwsJsonClient` unless a proxy applies to the endpoint or
    ESM_AWS_GETRECORDS=botocore."""
    if service not in _JSON_PROTOCOLS:
        raise ValueError(
            f"stream_reader_client: unsupported service {service!r}, "
            f"expected one of {sorted(_JSON_PROTOCOLS)}"
        )
    session = boto3.session.Session()
    client = aws_client(service, arn_region, max_pool_connections=max_pool_connections, session=session)
    choice = os.environ.get(GET_RECORDS_CLIENT_ENV, "lean")
    if choice not in ("lean", "botocore"):
        raise ValueError(f"{GET_RECORDS_CLIENT_ENV} must be 'lean' or 'botocore', got {choice!r}")
    endpoint = str(client.meta.endpoint_url)
    if choice == "botocore" or proxied(endpoint):
        return client
    credentials = session.get_credentials()
    json_client = AwsJsonClient(
        endpoint,
        str(client.meta.region_name),
        _JSON_PROTOCOLS[service],
        credentials.get_frozen_credentials if credentials is not None else (lambda: None),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_connections=max_pool_connections,
    )
    return LeanGetRecords(client, json_client)
