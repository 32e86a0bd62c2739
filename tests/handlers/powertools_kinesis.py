"""A Powertools BatchProcessor(EventType.KinesisDataStreams) handler with process_partial_response,
unmodified from how it would run on Lambda: every record it sees (partition key, sequence number,
JSON data, event source ARN, shard from the eventID) is appended as a JSON line to ESM_RECORDER_FILE.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


def record_handler(record: KinesisStreamRecord) -> None:
    line = {
        "partitionKey": record.kinesis.partition_key,
        "sequenceNumber": record.kinesis.sequence_number,
        "data": record.kinesis.data_as_json(),
        "eventSourceARN": record.event_source_arn,
        "shardId": record.event_id.rpartition(":")[0],
        "eventName": record.event_name,
    }
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
