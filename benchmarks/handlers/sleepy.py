"""A handler that takes ESM_BENCH_BATCH_SECONDS (default 0.02) per batch, whatever its size: a
function whose time is spent waiting (a database call, an HTTP request), not computing."""

from __future__ import annotations

import os
import time
from typing import Any

_SECONDS = float(os.environ.get("ESM_BENCH_BATCH_SECONDS", "0.02"))


def handler(event: dict[str, Any], context: Any) -> None:
    time.sleep(_SECONDS)
