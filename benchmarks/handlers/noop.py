"""A handler that does nothing, so a throughput benchmark measures the engine, not the function."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> None:
    return None
