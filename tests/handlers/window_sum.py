"""A tumbling-window aggregation handler, as AWS documents them: it adds int(data) of every Kinesis
record into `state["sum"]` and returns `{"state": state}`; on the window's final invocation it
appends `{"window", "shardId", "sum", "records"}` as one JSON line to ESM_WINDOW_RESULTS_FILE.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = dict(event.get("state") or {})
    records = event.get("Records") or []
    state["sum"] = int(state.get("sum", 0)) + sum(
        int(base64.b64decode(r["kinesis"]["data"])) for r in records
    )
    state["records"] = int(state.get("records", 0)) + len(records)
    if event.get("isFinalInvokeForWindow"):
        result = {
            "window": event["window"],
            "shardId": event["shardId"],
            "sum": state["sum"],
            "records": state["records"],
        }
        with open(os.environ["ESM_WINDOW_RESULTS_FILE"], "a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
    return {"state": state}
