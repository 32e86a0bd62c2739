"""esm's own mapping settings from an AWS SDK: they are not in botocore's model of Lambda, so boto3
would drop them; this adds them to the request body before boto3 signs it.

    aws = boto3.client("lambda", endpoint_url="http://127.0.0.1:9109")
    with_esm_settings(aws, {"KafkaConsumerConfig": {"session.timeout.ms": 10000}})
    aws.create_event_source_mapping(...)   # the body now carries KafkaConsumerConfig too
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

_OPERATIONS = ("CreateEventSourceMapping", "UpdateEventSourceMapping")


def with_esm_settings(client: Any, settings: Mapping[str, Any], kafka_only: bool = True) -> Any:
    """Makes `client` (boto3's `lambda`) send `settings` with every create and update of a mapping
    (with `kafka_only`, only of Kafka mappings: those naming a SelfManagedEventSource or updates);
    returns the client."""

    def add(params: dict[str, Any], **_: Any) -> None:
        body = orjson.loads(params["body"] or b"{}")
        if kafka_only and "EventSourceArn" in body:
            return
        params["body"] = orjson.dumps({**body, **settings})

    for operation in _OPERATIONS:
        client.meta.events.register(f"before-call.lambda.{operation}", add)
    return client
