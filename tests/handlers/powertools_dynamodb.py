"""A Powertools BatchProcessor(EventType.DynamoDBStreams) handler with process_partial_response, as it
would run on Lambda: every record reaches `record_handler` as Powertools' `DynamoDBRecord` data class,
and what the data class reads from it (event name, keys and images deserialized to Python values,
sequence number, view type, ...) is appended as one JSON line per record to ESM_RECORDER_FILE.

Deserialized numbers are Decimals and sets are Python sets: they are written as JSON numbers and
sorted lists. Binary values stay as Lambda delivers them (base64 text: Powertools does not decode)."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def record_handler(record: DynamoDBRecord) -> None:
    stream_record = record.dynamodb
    if stream_record is None:
        raise ValueError(f"record {record.event_id} has no dynamodb field")
    seen: dict[str, Any] = {
        "event_id": record.event_id,
        "event_name": record.event_name.name if record.event_name is not None else None,
        "event_source": record.event_source,
        "event_source_arn": record.event_source_arn,
        "aws_region": record.aws_region,
        "keys": stream_record.keys,
        "new_image": stream_record.new_image,
        "old_image": stream_record.old_image,
        "sequence_number": stream_record.sequence_number,
        "size_bytes": stream_record.size_bytes,
        "stream_view_type": (
            stream_record.stream_view_type.name if stream_record.stream_view_type is not None else None
        ),
        "approximate_creation_date_time": stream_record.approximate_creation_date_time,
    }
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(seen, default=_json_value) + "\n")


def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
