"""Destination URIs: what each accepted form means, and the message for each kind of mistake."""

from __future__ import annotations

import re

import pytest

from esm.destinations.errors import DestinationConfigError
from esm.destinations.uri import (
    DestinationTarget,
    FileTarget,
    KafkaTopicTarget,
    RedisStreamTarget,
    parse_destination_uri,
)

SOURCE = ("src1:9092", "src2:9092")


@pytest.mark.parametrize(
    ("uri", "source", "expected"),
    [
        ("kafka://k1:9092/failures", None, KafkaTopicTarget(("k1:9092",), "failures")),
        (
            "kafka://k1:9092,k2:9093/dlq.orders_v2",
            None,
            KafkaTopicTarget(("k1:9092", "k2:9093"), "dlq.orders_v2"),
        ),
        ("kafka://[::1]:9092/failures", None, KafkaTopicTarget(("[::1]:9092",), "failures")),
        ("kafka://failures", SOURCE, KafkaTopicTarget(SOURCE, "failures")),
        ("KAFKA://failures", SOURCE, KafkaTopicTarget(SOURCE, "failures")),
        ("kafka://k1:9092/failures", SOURCE, KafkaTopicTarget(("k1:9092",), "failures")),
        (
            "redis://127.0.0.1:6379/2?stream=esm:failures",
            None,
            RedisStreamTarget(
                "redis://127.0.0.1:6379/2", "esm:failures", "redis://127.0.0.1:6379/2?stream=esm:failures"
            ),
        ),
        (
            "rediss://:s3cret@cache.internal:6380/0?stream=f&health_check_interval=10",
            None,
            RedisStreamTarget(
                "rediss://:s3cret@cache.internal:6380/0?health_check_interval=10",
                "f",
                "rediss://:***@cache.internal:6380/0?stream=f&health_check_interval=10",
            ),
        ),
        ("file:///var/lib/esm/failures.jsonl", None, FileTarget("/var/lib/esm/failures.jsonl")),
        ("file://localhost/tmp/f.jsonl", None, FileTarget("/tmp/f.jsonl")),
        ("file:///tmp/with%20space/f.jsonl", None, FileTarget("/tmp/with space/f.jsonl")),
        ("  file:///tmp/f.jsonl  ", None, FileTarget("/tmp/f.jsonl")),
        ("file:///tmp/f.jsonl", None, FileTarget("/tmp/f.jsonl", mode=0o600, follow_symlinks=False)),
        ("file:///tmp/f.jsonl?mode=0640", None, FileTarget("/tmp/f.jsonl", mode=0o640)),
        ("file:///tmp/f.jsonl?mode=664", None, FileTarget("/tmp/f.jsonl", mode=0o664)),
        ("file:///tmp/f.jsonl?follow_symlinks=true", None, FileTarget("/tmp/f.jsonl", follow_symlinks=True)),
        (
            "file:///tmp/f%3F.jsonl?follow_symlinks=false&mode=0600",
            None,
            FileTarget("/tmp/f?.jsonl", mode=0o600, follow_symlinks=False),
        ),
    ],
)
def test_accepted_uris(uri: str, source: tuple[str, ...] | None, expected: DestinationTarget) -> None:
    assert parse_destination_uri(uri, source) == expected


SUPPORTED_HINT = "esm supports kafka://host:port"


@pytest.mark.parametrize(
    ("uri", "source", "message"),
    [
        ("", None, "the URI is empty"),
        ("arn:aws:sqs:us-east-1:111111111111:failures", None, "an SQS queue ARN"),
        ("arn:aws:sns:us-east-1:111111111111:failures", None, "an SNS topic ARN"),
        ("arn:aws:s3:::my-failure-bucket", None, "an S3 bucket ARN"),
        ("arn:aws-cn:sqs:cn-north-1:111111111111:q", None, "an SQS queue ARN"),
        ("arn:aws:kafka:us-east-1:111111111111:cluster/c/x", None, "an MSK cluster ARN"),
        ("s3://bucket/key", None, "unsupported URI scheme 's3'"),
        ("/var/lib/esm/failures.jsonl", None, "has no scheme"),
    ],
)
def test_unsupported_kinds_say_what_esm_supports(
    uri: str, source: tuple[str, ...] | None, message: str
) -> None:
    with pytest.raises(DestinationConfigError, match=message) as caught:
        parse_destination_uri(uri, source)
    assert SUPPORTED_HINT in str(caught.value)
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("uri", "source", "message"),
    [
        ("kafka://failures", None, "this mapping's source is not Kafka; name the brokers"),
        ("kafka://k1:9092", SOURCE, "names brokers but no topic"),
        ("kafka://k1:9092/", None, "has no topic"),
        ("kafka:///failures", None, "has no brokers before the topic"),
        ("kafka://k1/failures", None, "broker 'k1'; each broker must be host:port"),
        ("kafka://k1:9092,/failures", None, "broker ''; each broker must be host:port"),
        ("kafka://k1:99999/failures", None, "port 99999 (1-65535)"),
        ("kafka://k1:9092/a/b", None, "more than one path segment"),
        ("kafka://k1:9092/bad topic", None, "topic 'bad topic'"),
        ("kafka://.hidden", SOURCE, "does not start with '.'"),
        ("kafka://" + "t" * 250, SOURCE, "1-249"),
        ("kafka://k1:9092/t?acks=1", None, "takes no query"),
        ("kafka:failures", SOURCE, "must start with kafka://"),
        ("redis://127.0.0.1:6379/0", None, "no `stream` parameter"),
        ("redis://127.0.0.1:6379/0?stream=", None, "empty `stream`"),
        ("redis://127.0.0.1:6379/0?stream=a&stream=b", None, "`stream` more than once"),
        ("redis://127.0.0.1:6379/zero?stream=a", None, "database 'zero'"),
        ("redis://127.0.0.1:70000/0?stream=a", None, "bad port"),
        ("redis:///0?stream=a", None, "has no host"),
        ("redis://[::1/0?stream=a", None, "is malformed"),
        ("file://relative/failures.jsonl", None, "names host 'relative'"),
        ("file:relative.jsonl", None, "needs an absolute path"),
        ("file:///var/lib/esm/", None, "names a directory"),
        ("file:///tmp/f.jsonl?sync=0", None, "unknown option 'sync'; the options are mode=0640"),
        ("file:///tmp/f.jsonl#x", None, "takes no fragment"),
        ("file:///tmp/f.jsonl?mode", None, "has a malformed query"),
        ("file:///tmp/f.jsonl?mode=rw", None, "has mode 'rw'; expected octal permissions"),
        ("file:///tmp/f.jsonl?mode=0800", None, "expected octal permissions"),
        ("file:///tmp/f.jsonl?mode=01777", None, "expected octal permissions"),
        ("file:///tmp/f.jsonl?mode=0400", None, "the owner (esm) must be able to read and write"),
        ("file:///tmp/f.jsonl?mode=0600&mode=0640", None, "gives 'mode' more than once"),
        ("file:///tmp/f.jsonl?follow_symlinks=yes", None, "follow_symlinks='yes'; expected true or false"),
    ],
)
def test_mistakes_are_named(uri: str, source: tuple[str, ...] | None, message: str) -> None:
    with pytest.raises(DestinationConfigError, match=re.escape(message)):
        parse_destination_uri(uri, source)


def test_a_redis_password_never_appears_in_an_error() -> None:
    with pytest.raises(DestinationConfigError) as caught:
        parse_destination_uri("redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in str(caught.value)
