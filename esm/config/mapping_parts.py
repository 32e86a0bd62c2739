"""The nested AWS shapes inside a mapping entry, named and spelled as in CreateEventSourceMapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from esm.config.base import ConfigModel
from esm.config.constraints import HostPort, StrictBool, StrictStr, matching, non_empty
from esm.config.problems import describe, problem


class StartingPosition(StrEnum):
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AT_TIMESTAMP = "AT_TIMESTAMP"


class KafkaClient(StrEnum):
    KAFKA_PYTHON = "kafka-python"
    CONFLUENT_KAFKA = "confluent-kafka"


class FunctionResponseType(StrEnum):
    REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


def _exactly_one_topic(topics: tuple[str, ...]) -> tuple[str, ...]:
    if len(topics) != 1:
        raise problem("topics", f"must list exactly one topic, as in AWS, got {len(topics)}")
    return topics


KafkaTopic = Annotated[
    StrictStr, matching(r"[A-Za-z0-9._-]{1,249}", "a Kafka topic name ([A-Za-z0-9._-], 1-249)")
]
Topics = Annotated[tuple[KafkaTopic, ...], AfterValidator(_exactly_one_topic)]

GroupIdText = Annotated[
    StrictStr, matching(r"[a-zA-Z0-9\-/*:_+=.@]{1,200}", "a consumer group id ([a-zA-Z0-9-/*:_+=.@], 1-200)")
]


def to_utc_datetime(value: object) -> object:
    """Epoch seconds (number) or ISO-8601 text -> an aware UTC datetime; naive text is taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):  # YAML parses unquoted timestamps itself
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch_seconds(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise problem(
                "timestamp", f"expected epoch seconds or an ISO-8601 time, got {describe(value)}"
            ) from None
    else:
        raise problem("timestamp", f"expected epoch seconds or an ISO-8601 time, got {describe(value)}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _from_epoch_seconds(value: float) -> datetime:
    try:
        if value >= 0:  # NaN compares false
            return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        pass  # infinite, or past the year 9999
    raise problem("timestamp", f"expected epoch seconds from 0 to year 9999, got {describe(value)}")


Timestamp = Annotated[datetime, BeforeValidator(to_utc_datetime)]


class KafkaEndpoints(ConfigModel):
    KAFKA_BOOTSTRAP_SERVERS: Annotated[tuple[HostPort, ...], non_empty("host:port broker")]
    """The brokers to bootstrap from, each `host:port`. Required, at least one."""


class SelfManagedEventSource(ConfigModel):
    Endpoints: KafkaEndpoints
    """`{KAFKA_BOOTSTRAP_SERVERS: [host:port, ...]}`. Required."""


class SelfManagedKafkaEventSourceConfig(ConfigModel):
    ConsumerGroupId: GroupIdText | None = None
    """The Kafka consumer group. Default: the mapping's UUID (AWS's default)."""


class OnFailureDestination(ConfigModel):
    Destination: StrictStr | None = None
    """Where descriptions of failed batches go: `kafka://host:port/topic`, `kafka://topic` (the
    mapping's own cluster), `redis://host:port/db?stream=NAME` or `file:///path.jsonl`. Default: none."""
    IncludePayload: StrictBool = True
    """esm extension: put the failed invocation's event in the record (`payload`), so nothing is
    lost once the stream's retention passes. Default: true."""


class DestinationConfig(ConfigModel):
    OnFailure: OnFailureDestination | None = None
    """The on-failure destination. Default: none."""


def _parse_pattern(value: object) -> object:
    """AWS sends a pattern as JSON text; YAML users may write it as a mapping. Both become a dict."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise problem("pattern", f"expected a JSON object, got invalid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise problem("pattern", f"expected a JSON object or a mapping, got {describe(value)}")
    return value


class Filter(ConfigModel):
    Pattern: Annotated[dict[str, Any], BeforeValidator(_parse_pattern)]
    """An EventBridge-style pattern, as JSON text (AWS's form) or a mapping; held parsed. Required."""


class FilterCriteria(ConfigModel):
    Filters: tuple[Filter, ...] = ()
    """Patterns OR'd together; a record matching none is dropped. Default: [] (no filtering)."""
