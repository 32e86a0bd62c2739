from __future__ import annotations

import pytest

from esm.config.arns import parse_event_source_arn, resolve_function_name
from esm.config.sources import DynamoDBStreamsSource, KinesisSource, MskSource


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("orders", "orders"),
        ("arn:aws:lambda:us-east-1:123456789012:function:orders", "orders"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:orders:prod", "orders"),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:my_fn-2:7", "my_fn-2"),
    ],
)
def test_function_reference_resolves_to_name(reference: str, name: str) -> None:
    assert resolve_function_name(reference) == name


@pytest.mark.parametrize(
    "reference",
    [
        "has space",
        "x" * 65,
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "arn:aws:lambda:us-east-1:1:layer:x",
        "arn:bad",
    ],
)
def test_bad_function_reference_is_rejected(reference: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        resolve_function_name(reference)


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
            KinesisSource(
                "arn:aws:kinesis:us-east-1:123456789012:stream/clicks", "us-east-1", "123456789012", "clicks"
            ),
        ),
        (
            "arn:aws:kinesis:us-east-1:123456789012:stream/clicks/consumer/efo:1525898737",
            KinesisSource(
                "arn:aws:kinesis:us-east-1:123456789012:stream/clicks/consumer/efo:1525898737",
                "us-east-1",
                "123456789012",
                "clicks",
                consumer_name="efo",
            ),
        ),
        (
            "arn:aws:dynamodb:ddblocal:000000000000:table/Orders/stream/2024-01-01T00:00:00.000",
            DynamoDBStreamsSource(
                "arn:aws:dynamodb:ddblocal:000000000000:table/Orders/stream/2024-01-01T00:00:00.000",
                "ddblocal",
                "000000000000",
                "Orders",
                "2024-01-01T00:00:00.000",
            ),
        ),
        (
            "arn:aws:dynamodb:us-east-1:123456789012:table/Orders",
            DynamoDBStreamsSource(
                "arn:aws:dynamodb:us-east-1:123456789012:table/Orders",
                "us-east-1",
                "123456789012",
                "Orders",
                None,
            ),
        ),
        (
            "arn:aws:kafka:us-east-1:123456789012:cluster/prod/abc-123",
            MskSource(
                "arn:aws:kafka:us-east-1:123456789012:cluster/prod/abc-123",
                "us-east-1",
                "123456789012",
                "prod",
            ),
        ),
    ],
)
def test_event_source_arn_parses_into_typed_source(arn: str, expected: object) -> None:
    assert parse_event_source_arn(arn) == expected


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "arn:aws:kinesis:us-east-1:123456789012:table/x",
        "arn:aws:dynamodb:us-east-1:123456789012:table/T/index/I",
        "not-an-arn",
    ],
)
def test_other_arns_are_rejected(arn: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_event_source_arn(arn)
