"""The daemon's trace context reaches the function as Lambda hands X-Ray's: through real
`esm worker` processes, a Python handler and a Runtime API bootstrap."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from .grpc_client import result_of
from .worker_process import StartWorker

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
TRACEPARENT = (("traceparent", f"00-{TRACE}-{SPAN}-01"),)
XRAY = f"Root=1-0af76519-16cd43dd8448eb211c80319c;Parent={SPAN};Sampled=1"


async def test_a_python_handler_sees_the_trace_and_its_own_span_joins_it(
    start_worker: StartWorker, client_for: Any
) -> None:
    client = client_for(start_worker("traced.handler"))
    seen = result_of(await client.invoke({}, metadata=TRACEPARENT, timeout_ms=5000))
    assert seen["xray"] == XRAY
    assert seen["trace_id"] == TRACE
    assert seen["parent_span_id"] == SPAN
    # The next invocation without a trace context neither inherits the last one nor any parent.
    untraced = result_of(await client.invoke({}, timeout_ms=5000))
    assert untraced["xray"] is None
    assert untraced["parent_span_id"] is None and untraced["trace_id"] != TRACE


async def test_a_runtime_api_bootstrap_gets_lambda_runtime_trace_id(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            # Answers each invocation with its Lambda-Runtime-Trace-Id header as a JSON string.
            API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
            HEADERS=$(mktemp)
            while true; do
              curl -sS -o /dev/null -D "$HEADERS" "$API/invocation/next"
              ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
              TRACE=$(grep -Fi Lambda-Runtime-Trace-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
              curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" -d "\\"$TRACE\\""
            done
            """
        )
    )
    bootstrap.chmod(0o755)
    worker = start_worker(
        f"--bootstrap={bootstrap}", "--handler", "x.y", "--function-name", "f", cwd=tmp_path
    )
    client = client_for(worker)
    assert result_of(await client.invoke({}, metadata=TRACEPARENT, timeout_ms=5000)) == XRAY
    # Without a trace context the worker makes one up, unsampled, as before.
    own = result_of(await client.invoke({}, timeout_ms=5000))
    assert own.startswith("Root=1-") and own.endswith(";Sampled=0") and TRACE[8:] not in own
