"""Reads an event on stdin and prints what the shell handler should do: a word (fail, sleep, crash,
oom) or the JSON response (a partial batch response) — the same decisions as ../python/scenario.py."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from scenario import action

what, failed = action(json.load(sys.stdin))
if what == "respond":
    print(json.dumps({"batchItemFailures": [{"itemIdentifier": identifier} for identifier in failed]}))
else:
    print(what)
