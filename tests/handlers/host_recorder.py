"""Records each invocation with the host that ran it and when, for the several-hosts tests.

ESM_HOST_RECORDER_FILE: the file to append to (one JSON line per invocation).
ESM_HOST_RECORDER_SLEEP: seconds each invocation takes (default 0.2), so invocations overlap
and the concurrency limit is exercised.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from typing import Any


def handler(event: Any, context: Any) -> None:
    start = time.time()
    time.sleep(float(os.environ.get("ESM_HOST_RECORDER_SLEEP", "0.2")))
    records: list[list[Any]] = []
    for batch in (event.get("records") or {}).values():
        records += [[r["partition"], r["offset"], base64.b64decode(r["value"]).decode()] for r in batch]
    for r in event.get("Records") or ():
        shard = r["eventID"].split(":", 1)[0]
        data = base64.b64decode(r["kinesis"]["data"]).decode()
        records.append([shard, r["kinesis"]["sequenceNumber"], data])
    line = {"host": socket.gethostname(), "start": start, "end": time.time(), "records": records}
    with open(os.environ["ESM_HOST_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")  # one write per invocation
