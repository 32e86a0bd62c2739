"""Checks across the fields of one mapping entry, made on the raw entry.

They look only at which keys are present (and at a few values when those are readable), so they
run in the same pass as the field checks and are reported together even when fields are invalid.
"""

from __future__ import annotations

from collections.abc import Mapping

from esm.config.arns import parse_event_source_arn, resolve_function_name
from esm.config.problems import Location
from esm.config.sources import ArnSource, DynamoDBStreamsSource, MskSource

Problem = tuple[Location, str]


def mapping_shape_problems(entry: Mapping[str, object]) -> list[Problem]:
    def present(key: str) -> bool:
        return entry.get(key) is not None

    problems: list[Problem] = []
    problems += _function_problems(entry)
    sources = [key for key in ("SelfManagedEventSource", "EventSourceArn") if present(key)]
    if len(sources) != 1:
        got = "none" if not sources else "both"
        problems.append(
            (
                (),
                "needs exactly one event source: SelfManagedEventSource (with Topics) or EventSourceArn, "
                f"got {got}",
            )
        )
    arn_source = _readable_arn_source(entry.get("EventSourceArn"))
    is_kafka = present("SelfManagedEventSource") or isinstance(arn_source, MskSource)
    if present("SelfManagedEventSource") and not present("Topics"):
        problems.append((("Topics",), "is required with SelfManagedEventSource"))
    if not is_kafka:
        for key in ("Topics", "SelfManagedKafkaEventSourceConfig", "KafkaConsumerConfig"):
            if present(key) and sources:
                problems.append(((key,), "applies to Kafka sources only"))
    amazon_managed = entry.get("AmazonManagedKafkaEventSourceConfig")
    if isinstance(amazon_managed, Mapping) and amazon_managed:
        problems.append(
            (
                ("AmazonManagedKafkaEventSourceConfig",),
                "applies to Amazon MSK sources, which are not supported yet",
            )
        )
    problems += _starting_position_problems(entry, arn_source)
    return problems


def _function_problems(entry: Mapping[str, object]) -> list[Problem]:
    name, arn = entry.get("FunctionName"), entry.get("FunctionArn")
    if name is None and arn is None:
        return [(("FunctionName",), "is required (a function name or ARN)")]
    if isinstance(name, str) and isinstance(arn, str):
        try:
            differ = resolve_function_name(name) != resolve_function_name(arn)
        except ValueError:
            return []  # the field checks report the malformed one
        if differ:
            return [(("FunctionArn",), f"names a different function than FunctionName {name!r}")]
    return []


def _starting_position_problems(entry: Mapping[str, object], arn_source: ArnSource | None) -> list[Problem]:
    position = entry.get("StartingPosition")
    has_timestamp = entry.get("StartingPositionTimestamp") is not None
    if position == "AT_TIMESTAMP" and not has_timestamp:
        return [(("StartingPositionTimestamp",), "is required with StartingPosition AT_TIMESTAMP")]
    if position != "AT_TIMESTAMP" and has_timestamp:
        return [(("StartingPositionTimestamp",), "is only allowed with StartingPosition AT_TIMESTAMP")]
    if position == "AT_TIMESTAMP" and isinstance(arn_source, DynamoDBStreamsSource):
        return [(("StartingPosition",), "AT_TIMESTAMP is not available for DynamoDB Streams (as in AWS)")]
    return []


def _readable_arn_source(value: object) -> ArnSource | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_event_source_arn(value)
    except ValueError:
        return None  # the field check reports it
