"""A Powertools BatchProcessor(EventType.Kafka) handler with process_partial_response, as it would
run on Lambda: a record whose value equals ESM_RECORDER_FAIL_VALUE fails; every record the
handler sees is appended (JSON line: partition, offset, value, ok) to ESM_RECORDER_FILE."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord

processor = BatchProcessor(event_type=EventType.Kafka)


def record_handler(record: KafkaEventRecord) -> None:
    value = record.decoded_value.decode()
    ok = value != os.environ.get("ESM_RECORDER_FAIL_VALUE")
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(
            json.dumps({"partition": record.partition, "offset": record.offset, "value": value, "ok": ok})
            + "\n"
        )
    if not ok:
        raise ValueError(f"cannot process {value}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
