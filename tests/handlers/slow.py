"""Sleeps ESM_SLOW_SECONDS (default 0.05) per invocation and records the event like the recorder, so
tests can hold invocations in flight (concurrency limits, rebalances mid-stream)."""

from __future__ import annotations

import os
import time
from typing import Any

from tests.handlers import recorder


def handler(event: Any, context: Any) -> None:
    time.sleep(float(os.environ.get("ESM_SLOW_SECONDS", "0.05")))
    return recorder.handler(event, context)
