"""The lines Lambda writes around every invocation, whatever the runtime (pure):

    START RequestId: <id> Version: $LATEST
    END RequestId: <id>
    REPORT RequestId: <id>	Duration: 2.75 ms	Billed Duration: 3 ms	Memory Size: 128 MB
        Max Memory Used: 39 MB	Init Duration: 139.25 ms    (one line, tab-separated)

and a function error as Lambda's runtimes log it: `[ERROR] <type>: <message>` then the trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from esm.worker.function_error import EXIT_ERROR, OUT_OF_MEMORY, TIMED_OUT, FunctionError

# Errors the platform, not the function, reports: REPORT says so in its Status field.
_STATUS_BY_ERROR = {TIMED_OUT: "timeout", EXIT_ERROR: "error", OUT_OF_MEMORY: "error"}


@dataclass(frozen=True)
class ReportFacts:
    request_id: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    error_type: str | None = None


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(facts: ReportFacts) -> str:
    duration = facts.duration_ms
    line = (
        f"REPORT RequestId: {facts.request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration))} ms\tMemory Size: {facts.memory_size_mb} MB\t"
        f"Max Memory Used: {facts.max_memory_used_mb} MB"
    )
    if facts.init_duration_ms is not None:
        line += f"\tInit Duration: {facts.init_duration_ms:.2f} ms"
    if facts.error_type is not None:
        status = _STATUS_BY_ERROR.get(facts.error_type)
        if status == "timeout":
            line += "\tStatus: timeout"
        elif status == "error":
            line += f"\tStatus: error\tError Type: {facts.error_type}"
    return line


def error_lines(error: FunctionError) -> list[str]:
    """`[ERROR] Type: message`, then the stack trace one frame line per line."""
    head = (
        f"[ERROR] {error.error_type}: {error.error_message}"
        if error.error_message
        else f"[ERROR] {error.error_type}"
    )
    lines = head.splitlines() or [head]
    if error.stack_trace:
        lines.append("Traceback (most recent call last):")
        for frame in error.stack_trace:
            lines.extend(frame.rstrip("\n").splitlines())
    return lines
