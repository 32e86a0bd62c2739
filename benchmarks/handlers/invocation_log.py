"""Notes each invocation: one JSON line {host, start, end, records: [[partition, offset], ...]}
per invocation, in $ESM_BENCH_INVOCATION_DIR/invocations-$ESM_BENCH_HOST.jsonl; each invocation
takes $ESM_BENCH_SLEEP seconds (default 0.05)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], context: Any) -> None:
    start = time.time()
    time.sleep(float(os.environ.get("ESM_BENCH_SLEEP", "0.05")))
    records = [
        [r["partition"], r["offset"]] for batch in (event.get("records") or {}).values() for r in batch
    ]
    host = os.environ["ESM_BENCH_HOST"]
    line = json.dumps({"host": host, "start": start, "end": time.time(), "records": records})
    with (Path(os.environ["ESM_BENCH_INVOCATION_DIR"]) / f"invocations-{host}.jsonl").open("a") as out:
        out.write(line + "\n")
