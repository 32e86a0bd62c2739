"""A Kafka handler whose answer each record's value decides, for the tests of what esm says about it:
- "raise": the invocation raises ValueError (a function error);
- "bogus": the response names an itemIdentifier that is in no batch (an invalid response);
- "bad...": the record is reported failed (a partial batch response);
- anything else succeeds.
"""

from __future__ import annotations

import base64
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures: list[dict[str, Any]] = []
    for key, records in event["records"].items():
        for record in records:
            value = base64.b64decode(record["value"])
            if value == b"raise":
                raise ValueError(f"cannot handle {key} offset {record['offset']}")
            if value == b"bogus":
                return {"batchItemFailures": [{"itemIdentifier": "bogus"}]}
            if value.startswith(b"bad"):
                failures.append({"itemIdentifier": {"partition": key, "offset": record["offset"]}})
    return {"batchItemFailures": failures}
