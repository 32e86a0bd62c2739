"""A handler that does what the event's "action" says, so one worker can serve many tests.

Actions: context (echo the context), raise (ValueError with event["message"]), unserialisable
(return a set), count (bump a module-level counter: state kept per environment), sleep
(event["seconds"], then count), exit (os._exit(event["code"])), segfault, print (event["text"] to stdout
and stderr), gate (create <dir>/entered-<request id>, wait for <dir>/release, then count; with
no release it waits until the worker's timeout kills the environment).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path
from typing import Any

invocations = 0  # module state: lives as long as the execution environment


def handler(event: dict[str, Any], context: Any) -> Any:
    global invocations
    invocations += 1
    action = event["action"]
    if action == "context":
        return {
            "event": event,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "identity": context.identity,
            "client_context": context.client_context,
        }
    if action == "raise":
        _fail(event["message"])
    if action == "unserialisable":
        return {"not json": {1, 2}}
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(event["code"])
    if action == "segfault":
        ctypes.string_at(0)
    if action == "print":
        print(event["text"])
        print(event["text"], file=sys.stderr)
    if action == "gate":
        _wait_at_gate(Path(event["dir"]), context)
    return {"count": invocations, "pid": os.getpid()}


def _fail(message: str) -> None:
    raise ValueError(message)


def _wait_at_gate(gate: Path, context: Any) -> None:
    (gate / f"entered-{context.aws_request_id}").touch()
    while not (gate / "release").exists():
        time.sleep(0.005)
