"""The worker's own invocation counters, optionally mirrored to a JSON file for tests and checks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

STATS_FILE_ENV = "ESM_WORKER_STATS_FILE"


@dataclass
class InvocationStats:
    """Invocations in flight now, the most ever in flight at once, and how many have finished."""

    in_flight: int = 0
    max_in_flight: int = 0
    invocations: int = 0

    def started(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1
        self.invocations += 1

    def to_json(self) -> bytes:
        return orjson.dumps({"max_in_flight": self.max_in_flight, "invocations": self.invocations})


def write_stats_file(path: Path, stats: InvocationStats) -> None:
    """Replace `path` atomically (write a sibling, then rename), so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(stats.to_json())
    os.replace(temporary, path)
