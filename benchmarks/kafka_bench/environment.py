"""Where and when a benchmark ran: the machine, the date and the load, for its JSON and charts.

Figures from a shared 2-core machine mean little without the load beside them, so every sweep
records the load average when it starts and when it ends.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` in /proc/cpuinfo's text; "unknown CPU" when there is none."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown CPU"


def machine_description() -> str:
    """e.g. "2-core Intel(R) Xeon(R) ..." (the figure every ratio depends on)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    return f"{os.cpu_count() or 0}-core {cpu_model(cpuinfo)}"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def started() -> dict[str, Any]:
    """The environment at the start of a benchmark; `finished` adds the load at its end."""
    return {
        "machine": machine_description(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_start": load_average(),
    }


def finished(environment: dict[str, Any]) -> dict[str, Any]:
    return {**environment, "load_average_end": load_average()}
