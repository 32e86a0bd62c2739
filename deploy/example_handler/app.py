"""A Lambda handler, unchanged from how it runs on AWS: reads a Kafka batch and returns."""

import base64
import json


def handler(event, context):  # type: ignore[no-untyped-def]
    total = 0
    for records in event["records"].values():
        for record in records:
            order = json.loads(base64.b64decode(record["value"]))
            total += order.get("amount", 0)
    return {"total": total}
