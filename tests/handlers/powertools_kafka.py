"""A handler written the Powertools way, unmodified from how it would run on Lambda: it reads every
record's key, value and headers through the Kafka event data class and appends them, as JSON
lines, to the file named by ESM_RECORDER_FILE."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KafkaEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext


@event_source(data_class=KafkaEvent)
def handler(event: KafkaEvent, context: LambdaContext) -> dict[str, Any]:
    lines = []
    for record in event.records:
        lines.append(
            json.dumps(
                {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": record.decoded_key.decode() if record.decoded_key is not None else None,
                    "value": record.json_value,
                    "headers": {name: value.decode() for name, value in record.decoded_headers.items()},
                    "servers": event.decoded_bootstrap_servers,
                    "function": context.function_name,
                }
            )
        )
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return {"processed": len(lines)}
