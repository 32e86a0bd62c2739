"""Returns a response of ESM_LARGE_RESPONSE_MB megabytes (default 20) and counts its invocations,
one line each in ESM_RECORDER_FILE, for the response-size tests."""

from __future__ import annotations

import os
from typing import Any


def handler(event: Any, context: Any) -> str:
    with open(os.environ["ESM_RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(context.aws_request_id + "\n")
    return "x" * (int(os.environ.get("ESM_LARGE_RESPONSE_MB", "20")) * 1024 * 1024)
