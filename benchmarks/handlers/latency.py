"""Records produce-to-handler latency: now - the record's CreateTime, per record, in ms.

Each execution environment (a process) appends to its own file in $ESM_BENCH_LATENCY_DIR, one
number per line, so concurrent environments never interleave writes. Records keyed `warmup`
are not measured: they only show that a partition is flowing, by leaving a marker file.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

LATENCY_DIR_ENV = "ESM_BENCH_LATENCY_DIR"
WARMUP_KEY = b"warmup"
_WARMUP_KEY_B64 = base64.b64encode(WARMUP_KEY).decode()


def handler(event: dict[str, Any], context: Any) -> None:
    now_ms = time.time() * 1000.0
    out_dir = Path(os.environ[LATENCY_DIR_ENV])
    latencies: list[str] = []
    for records in event.get("records", {}).values():
        for record in records:
            if record.get("key") == _WARMUP_KEY_B64:
                (out_dir / f"warmup-{record['partition']}").touch()
            else:
                latencies.append(f"{now_ms - record['timestamp']:.2f}\n")
    if latencies:
        with (out_dir / f"latency-{os.getpid()}.txt").open("a") as out:
            out.write("".join(latencies))
