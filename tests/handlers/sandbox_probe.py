"""Looks at its execution environment, for the worker's environment tests. Actions (event["action"]):
environ (the variables and temp directory it sees), write_tmp (a file in TMPDIR, then list it),
allocate (event["mb"] megabytes, kept), lines (event["count"] lines of event["width"] characters
starting with event["marker"], written as fast as it can), exit."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

held: list[bytes] = []


def handler(event: dict[str, Any], context: Any) -> Any:
    action = event["action"]
    if action == "environ":
        if "barrier" in event:  # wait until that many invocations got here: they overlap
            _barrier(event["barrier"], event["parties"], context.aws_request_id)
        return {"environ": dict(os.environ), "tempdir": tempfile.gettempdir(), "pid": os.getpid()}
    if action == "write_tmp":
        with open(os.path.join(tempfile.gettempdir(), event["name"]), "w") as out:
            out.write("x")
        return sorted(os.listdir(tempfile.gettempdir()))
    if action == "allocate":
        held.append(b"x" * (event["mb"] * 1024 * 1024))
        return len(held)
    if action == "lines":
        for i in range(event["count"]):
            text = f"{event['marker']}-{i}-"
            print(text + "y" * (event["width"] - len(text)), file=sys.stderr if i % 2 else sys.stdout)
        return None
    if action == "exit":
        os._exit(7)
    raise ValueError(f"unknown action {action!r}")


def _barrier(folder: str, parties: int, request_id: str) -> None:
    open(os.path.join(folder, request_id), "w").close()
    deadline = time.monotonic() + 10
    while len(os.listdir(folder)) < parties and time.monotonic() < deadline:
        time.sleep(0.005)
