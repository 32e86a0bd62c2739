"""Does nothing and returns None (the worker answers `null`): for round-trip and load tests."""

from __future__ import annotations

from typing import Any


def handler(event: Any, context: Any) -> None:
    return None
