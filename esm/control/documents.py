"""Between Lambda's API shapes and esm's mapping config: a request body becomes a mapping document
(the same AWS fields a config file holds, checked by the same validation as `esm validate`), and a
mapping becomes the `EventSourceMappingConfiguration` the API answers with. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from esm.config import ConfigError, EventSourceMappingConfig, KafkaSource, parse_mapping
from esm.control.errors import invalid

ACCOUNT = "000000000000"
# What UpdateEventSourceMapping may change (its request members in botocore's model), plus esm's
# own settings that are not part of a mapping's identity.
UPDATABLE = frozenset(
    {
        "FunctionName",
        "Enabled",
        "BatchSize",
        "FilterCriteria",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "DestinationConfig",
        "MaximumRecordAgeInSeconds",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "TumblingWindowInSeconds",
        "FunctionResponseTypes",
        "SelfManagedKafkaEventSourceConfig",
        "KMSKeyArn",
        "MetricsConfig",
        "LoggingConfig",
        "ScalingConfig",
        "SourceAccessConfigurations",
        "AmazonManagedKafkaEventSourceConfig",
        "DocumentDBEventSourceConfig",
        "ProvisionedPollerConfig",
        # esm extensions
        "MaximumRetryBackoffInSeconds",
        "PollingIntervalInSeconds",
        "IdlePollingIntervalInSeconds",
        "KafkaConsumerConfig",
        "KafkaClient",
    }
)
# Accepted by the API and ignored, as the config file ignores AWS-only settings.
_API_ONLY = frozenset({"MetricsConfig", "LoggingConfig"})


@dataclass(frozen=True)
class MappingView:
    """What the API says of a mapping besides its settings."""

    state: str
    state_reason: str
    last_modified: float
    last_processing_result: str


def validated(document: Mapping[str, Any]) -> EventSourceMappingConfig:
    """The mapping the document describes, or InvalidParameterValueException naming every problem
    the way `esm validate` words it."""
    try:
        return parse_mapping(dict(document), source="request")
    except ConfigError as error:
        raise invalid("; ".join(error.problems)) from None


def create_document(body: Mapping[str, Any], uuid: str) -> dict[str, Any]:
    """A CreateEventSourceMapping body as the mapping's document (with its new UUID)."""
    if "UUID" in body and body["UUID"] != uuid:
        uuid = str(body["UUID"])  # esm extension: the caller chose it (checked by validation)
    return {**_without_api_only(body), "UUID": uuid}


def updated_document(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The document after an UpdateEventSourceMapping: the given fields replace the current ones."""
    fixed = sorted(set(changes) - UPDATABLE - {"UUID"})
    if fixed:
        raise invalid(
            f"{', '.join(fixed)} cannot be changed by UpdateEventSourceMapping: "
            "delete the mapping and create it again"
        )
    return {**current, **_without_api_only(changes)}


def _without_api_only(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key not in _API_ONLY}


def function_arn(name: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"


def configuration(mapping: EventSourceMappingConfig, view: MappingView, region: str) -> dict[str, Any]:
    """Lambda's EventSourceMappingConfiguration for `mapping`."""
    out: dict[str, Any] = {"UUID": mapping.uuid}
    source = mapping.source
    if isinstance(source, KafkaSource):
        out["SelfManagedEventSource"] = {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(source.bootstrap_servers)}
        }
        out["Topics"] = [source.topic]
        out["SelfManagedKafkaEventSourceConfig"] = {"ConsumerGroupId": source.consumer_group_id}
    else:
        out["EventSourceArn"] = mapping.EventSourceArn
        out["TumblingWindowInSeconds"] = mapping.TumblingWindowInSeconds
    out["StartingPosition"] = mapping.starting_position.value
    if mapping.starting_position_timestamp is not None:
        out["StartingPositionTimestamp"] = _epoch(mapping.starting_position_timestamp)
    out.update(
        BatchSize=mapping.batch_size,
        MaximumBatchingWindowInSeconds=_number(mapping.batching_window_seconds),
        ParallelizationFactor=mapping.ParallelizationFactor,
        FunctionArn=function_arn(mapping.function_name, region),
        LastModified=view.last_modified,
        LastProcessingResult=view.last_processing_result,
        State=view.state,
        StateTransitionReason=view.state_reason,
        DestinationConfig={"OnFailure": _on_failure(mapping)},
        MaximumRecordAgeInSeconds=mapping.MaximumRecordAgeInSeconds,
        BisectBatchOnFunctionError=mapping.BisectBatchOnFunctionError,
        MaximumRetryAttempts=mapping.MaximumRetryAttempts,
        FunctionResponseTypes=[kind.value for kind in mapping.FunctionResponseTypes],
        EventSourceMappingArn=f"arn:aws:lambda:{region}:{ACCOUNT}:event-source-mapping:{mapping.uuid}",
    )
    if mapping.FilterCriteria.Filters:
        out["FilterCriteria"] = {
            "Filters": [{"Pattern": orjson.dumps(f.Pattern).decode()} for f in mapping.FilterCriteria.Filters]
        }
    return out


def _on_failure(mapping: EventSourceMappingConfig) -> dict[str, Any]:
    destination = mapping.on_failure_destination
    return {} if destination is None else {"Destination": destination}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _epoch(moment: datetime) -> float:
    return moment.timestamp()
