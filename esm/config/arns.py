"""Parsing the ARNs a mapping may name: its function and its event source.

Regions are not checked against a list: local emulators use their own (DynamoDB Local: `ddblocal`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from esm.config.problems import describe
from esm.config.sources import ArnSource, DynamoDBStreamsSource, KinesisSource, MskSource

FUNCTION_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_FUNCTION_NAME = re.compile(FUNCTION_NAME_PATTERN)
_FUNCTION_ARN_FORM = "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: str) -> Arn:
    """`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`; the resource may itself contain colons."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not all(parts[1:3]) or not parts[5]:
        raise ValueError(
            f"expected an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE), got {describe(text)}"
        )
    return Arn(partition=parts[1], service=parts[2], region=parts[3], account=parts[4], resource=parts[5])


def resolve_function_name(reference: str) -> str:
    """A function name, or a Lambda function ARN (qualifier dropped), -> the function name."""
    if not reference.startswith("arn:"):
        if not _FUNCTION_NAME.fullmatch(reference):
            raise ValueError(
                f"expected a function name (letters, digits, '-', '_'; up to 64) or {_FUNCTION_ARN_FORM}, "
                f"got {describe(reference)}"
            )
        return reference
    arn = parse_arn(reference)
    kind, _, rest = arn.resource.partition(":")
    name, _, _qualifier = rest.partition(":")
    if arn.service != "lambda" or kind != "function" or not _FUNCTION_NAME.fullmatch(name):
        raise ValueError(f"expected {_FUNCTION_ARN_FORM}, got {describe(reference)}")
    return name


def parse_event_source_arn(text: str) -> ArnSource:
    """A Kinesis stream, DynamoDB stream or MSK cluster ARN -> its typed source."""
    arn = parse_arn(text)
    segments = arn.resource.split("/")
    if arn.service == "kinesis" and len(segments) >= 2 and segments[0] == "stream" and segments[1]:
        consumer = segments[3].split(":")[0] if len(segments) >= 4 and segments[2] == "consumer" else None
        return KinesisSource(
            arn=text, region=arn.region, account=arn.account, stream_name=segments[1], consumer_name=consumer
        )
    if arn.service == "dynamodb" and segments[0] == "table" and len(segments) in (2, 4) and segments[1]:
        label = None
        if len(segments) == 4:
            if segments[2] != "stream" or not segments[3]:
                raise ValueError(f"expected ...:table/TABLE/stream/LABEL, got {describe(text)}")
            label = segments[3]
        return DynamoDBStreamsSource(
            arn=text, region=arn.region, account=arn.account, table_name=segments[1], stream_label=label
        )
    if arn.service == "kafka" and len(segments) >= 2 and segments[0] == "cluster" and segments[1]:
        return MskSource(arn=text, region=arn.region, account=arn.account, cluster_name=segments[1])
    raise ValueError(
        "expected a Kinesis stream (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME), "
        "DynamoDB stream (arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL) "
        f"or MSK cluster (arn:aws:kafka:...) ARN, got {describe(text)}"
    )
