"""AWS mapping fields that have no effect in esm, so pasted AWS JSON loads unchanged.

Two kinds: fields AWS only returns (state, timestamps, ARNs: dropped silently), and settings a
user may have set on AWS that mean nothing here (accepted, each reported as a warning).
"""

from __future__ import annotations

from collections.abc import Mapping

# Returned by GetEventSourceMapping / CreateEventSourceMapping (and boto3), never read by esm.
# FunctionArn is not listed: it names the function when FunctionName is absent.
RESPONSE_ONLY_FIELDS = frozenset(
    {
        "State",
        "StateTransitionReason",
        "LastModified",
        "LastProcessingResult",
        "EventSourceMappingArn",
        "FilterCriteriaError",
        "MetricsConfig",  # esm always exports its metrics
        "ResponseMetadata",  # boto3's envelope
    }
)

# Settings with no meaning in esm: accepted with a warning saying why.
AWS_ONLY_SETTINGS: Mapping[str, str] = {
    "ProvisionedPollerConfig": "esm sizes its pollers with `esm run --processes`",
    "ScalingConfig": "concurrency is the function's ReservedConcurrentExecutions",
    "KMSKeyArn": "esm keeps no filter criteria encrypted at rest",
    "SourceAccessConfigurations": "Kafka credentials go in KafkaConsumerConfig (sasl.*, ssl.*)",
    "Tags": "esm has no resource tags",
    "AmazonManagedKafkaEventSourceConfig": "it applies to Amazon MSK sources only",
    "DocumentDBEventSourceConfig": "esm has no DocumentDB source",
    "Queues": "esm has no Amazon MQ source",
}


def strip_response_fields(data: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in data.items() if key not in RESPONSE_ONLY_FIELDS}


def aws_only_warning(location: str, field: str) -> str:
    return f"{location}.{field}: ignored, AWS-only setting ({AWS_ONLY_SETTINGS[field]})"
