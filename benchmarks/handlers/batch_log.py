"""Notes when each batch arrived and how many records it held: one line `epoch_seconds count` per
invocation, in a file per execution environment under $ESM_BENCH_BATCH_DIR (no interleaving)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def handler(event: dict[str, Any], context: Any) -> None:
    count = sum(len(records) for records in (event.get("records") or {}).values()) or len(
        event.get("Records") or []
    )
    with (Path(os.environ["ESM_BENCH_BATCH_DIR"]) / f"batches-{os.getpid()}.txt").open("a") as out:
        out.write(f"{time.time():.6f} {count}\n")
