"""The events AWS recorded delivering to Lambda (tests/fixtures/aws-recorded), for golden tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "aws-recorded"


def recorded_fixtures() -> list[Path]:
    """Every recorded snapshot; never empty, so a test that loops over them cannot pass on nothing."""
    found = sorted(FIXTURES.glob("*.snapshot.json"))
    if not found:
        raise FileNotFoundError(f"no recorded AWS snapshots in {FIXTURES}")
    return found


def recorded_records(fixture: Path) -> list[dict[str, Any]]:
    """Every record of every event Lambda delivered in the fixture's recorded scenarios."""
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Records" and isinstance(value, list):
                    found.extend(item for item in value if isinstance(item, dict))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(fixture.read_text()))
    return found


def in_delivery_order(record: dict[str, Any]) -> bool:
    """The snapshot tool sorted some events' keys; the others keep Lambda's order."""
    return list(record) != sorted(record)
