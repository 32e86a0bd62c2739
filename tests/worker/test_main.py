"""`esm worker` end to end: a real worker process, real environments, real gRPC over 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2

from .grpc_client import FAST_TIMEOUT_MS, result_of
from .worker_process import HANDLERS_DIR, StartWorker, WorkerProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def wait_for_file(path: Path, timeout_s: float = 10.0) -> None:
    """Wait until a handler signalled that it got somewhere (polling a condition, not passing time)."""
    async with asyncio.timeout(timeout_s):
        while not path.exists():
            await asyncio.sleep(0.005)


@pytest.fixture(scope="module")
def shared_worker() -> Iterator[WorkerProcess]:
    """One worker for the tests that do not depend on environment state."""
    worker = WorkerProcess(
        ["scripted.handler", "--listen", "127.0.0.1:0", "--function-name", "orders-fn", "--concurrency", "2"],
        cwd=HANDLERS_DIR,
        env=dict(os.environ),
    )
    try:
        worker.wait_serving()
        yield worker
    finally:
        worker.stop()


async def test_success_round_trip_fills_the_context(shared_worker: WorkerProcess, client_for: Any) -> None:
    client = client_for(shared_worker)
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:from-request:live"
    response = await client.invoke(
        {"action": "context", "n": 1},
        request_id="req-1",
        function_name="from-request",
        function_version="7",
        invoked_function_arn=arn,
        memory_limit_mb=256,
    )
    context = result_of(response)
    assert context["event"] == {"action": "context", "n": 1}
    assert context["aws_request_id"] == "req-1"
    assert context["function_name"] == "from-request"
    assert context["function_version"] == "7"
    assert context["invoked_function_arn"] == arn
    assert context["memory_limit_in_mb"] == "256"  # a string, as in Lambda's Python runtime
    assert context["log_group_name"] == "/aws/lambda/from-request"
    assert "/[$LATEST]" in context["log_stream_name"]
    assert 0 < context["remaining_ms"] <= FAST_TIMEOUT_MS
    assert context["identity"] is None and context["client_context"] is None
    assert response.environment_id in (1, 2)
    assert 0 < response.duration_us < FAST_TIMEOUT_MS * 1000


async def test_empty_request_fields_fall_back_to_the_function_name_option(
    shared_worker: WorkerProcess, client_for: Any
) -> None:
    context = result_of(await client_for(shared_worker).invoke({"action": "context"}))
    assert context["function_name"] == "orders-fn"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"].endswith(":function:orders-fn")
    assert context["memory_limit_in_mb"] == "128"


async def test_exception_is_an_unhandled_function_error(
    shared_worker: WorkerProcess, client_for: Any
) -> None:
    response = await client_for(shared_worker).invoke({"action": "raise", "message": "bad order 42"})
    assert response.payload == b""
    assert response.error.error_type == "ValueError"
    assert response.error.error_message == "bad order 42"
    trace = list(response.error.stack_trace)
    assert "scripted.py" in trace[0] and "in handler" in trace[0]
    assert "in _fail" in trace[-1] and "raise ValueError(message)" in trace[-1]
    assert not any("esm/worker" in line for line in trace), "runtime frames leaked into the stack trace"


async def test_unserialisable_return_value_is_a_marshal_error(
    shared_worker: WorkerProcess, client_for: Any
) -> None:
    client = client_for(shared_worker)
    response = await client.invoke({"action": "unserialisable"})
    assert response.error.error_type == "Runtime.MarshalError"
    assert "Unable to marshal response" in response.error.error_message
    # The worker keeps serving after function errors.
    assert "count" in result_of(await client.invoke({"action": "count"}))


async def test_health_reports_serving(shared_worker: WorkerProcess, client_for: Any) -> None:
    client = client_for(shared_worker)
    assert await client.health("") == SERVING
    assert await client.health("esm.v1.FunctionWorker") == SERVING


async def test_handler_output_goes_to_the_worker_stderr(
    shared_worker: WorkerProcess, client_for: Any
) -> None:
    marker = f"printed-{uuid.uuid4().hex}"
    result_of(await client_for(shared_worker).invoke({"action": "print", "text": marker}))
    shared_worker.wait_for_line(marker, timeout=10)
    assert shared_worker.stderr.count(marker) == 2  # once from its stdout, once from its stderr


async def test_a_six_megabyte_event_round_trips(shared_worker: WorkerProcess, client_for: Any) -> None:
    big = "x" * (6 * 1024 * 1024 - 2000)  # the echo adds the context fields: still under 6 MB
    context = result_of(
        await client_for(shared_worker).invoke({"action": "context", "big": big}, timeout_ms=5000)
    )
    assert context["event"]["big"] == big


async def test_module_state_is_reused_and_a_dead_environment_replaced(
    start_worker: StartWorker, client_for: Any
) -> None:
    client = client_for(start_worker("scripted.handler"))
    first = result_of(await client.invoke({"action": "count"}))
    second = result_of(await client.invoke({"action": "count"}))
    assert (first["count"], second["count"]) == (1, 2)
    assert first["pid"] == second["pid"]

    died = await client.invoke({"action": "exit", "code": 3}, request_id="req-exit")
    assert died.error.error_type == "Runtime.ExitError"
    assert died.error.error_message == "RequestId: req-exit Error: Runtime exited with error: exit status 3"

    after = await client.invoke({"action": "count"})
    assert result_of(after)["count"] == 1, "the replacement environment must start with fresh module state"
    assert result_of(after)["pid"] != first["pid"]
    assert after.environment_id != died.environment_id

    crashed = await client.invoke({"action": "segfault"}, request_id="req-crash")
    assert crashed.error.error_type == "Runtime.ExitError"
    assert crashed.error.error_message.endswith("Runtime exited with error: signal: segmentation fault")
    assert result_of(await client.invoke({"action": "count"}))["count"] == 1


async def test_timeout_replaces_only_that_environment(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    client = client_for(start_worker("scripted.handler", "--concurrency", "2"))
    stuck_gate, held_gate = tmp_path / "stuck", tmp_path / "held"
    stuck_gate.mkdir()
    held_gate.mkdir()

    stuck = asyncio.create_task(
        client.invoke({"action": "gate", "dir": str(stuck_gate)}, request_id="req-stuck")
    )
    await wait_for_file(stuck_gate / "entered-req-stuck")
    other = await client.invoke({"action": "count"})  # the only free environment
    timed_out = await stuck
    assert timed_out.error.error_type == "Sandbox.Timedout"
    assert timed_out.error.error_message == "RequestId: req-stuck Error: Task timed out after 0.30 seconds"
    assert timed_out.environment_id != other.environment_id

    # Hold the surviving environment, so the next call must go to the replacement.
    held = asyncio.create_task(
        client.invoke({"action": "gate", "dir": str(held_gate)}, timeout_ms=10_000, request_id="req-held")
    )
    await wait_for_file(held_gate / "entered-req-held")
    fresh = await client.invoke({"action": "count"}, timeout_ms=10_000)
    (held_gate / "release").touch()
    survivor = await held

    assert fresh.environment_id not in (timed_out.environment_id, other.environment_id)
    assert result_of(fresh)["count"] == 1, "the replacement starts with fresh module state"
    assert survivor.environment_id == other.environment_id
    assert result_of(survivor)["count"] == result_of(other)["count"] + 1, (
        "the other environment kept its state"
    )


async def test_concurrency_n_runs_n_in_parallel_and_throttles_the_next(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    gate = tmp_path / "gate"
    gate.mkdir()
    worker = start_worker(
        "scripted.handler", "--concurrency", "3", env={"ESM_WORKER_STATS_FILE": str(stats_file)}
    )
    client = client_for(worker)

    ids = [f"req-{i}" for i in range(3)]
    calls = [
        asyncio.create_task(
            client.invoke({"action": "gate", "dir": str(gate)}, timeout_ms=10_000, request_id=i)
        )
        for i in ids
    ]
    for request_id in ids:
        await wait_for_file(gate / f"entered-{request_id}")
    with pytest.raises(grpc.aio.AioRpcError) as throttled:
        await client.invoke({"action": "count"})
    assert throttled.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    (gate / "release").touch()
    responses = await asyncio.gather(*calls)
    assert all(result_of(response)["count"] == 1 for response in responses)
    assert sorted(response.environment_id for response in responses) == [1, 2, 3]
    assert orjson.loads(stats_file.read_bytes()) == {"max_in_flight": 3, "invocations": 3}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_lets_the_in_flight_call_finish_then_exits_0(
    start_worker: StartWorker, client_for: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    worker = start_worker("scripted.handler", "--concurrency", "2")
    client = client_for(worker)
    in_flight = asyncio.create_task(
        client.invoke({"action": "gate", "dir": str(tmp_path)}, timeout_ms=10_000, request_id="req-drain")
    )
    await wait_for_file(tmp_path / "entered-req-drain")

    worker.process.send_signal(signum)
    await asyncio.to_thread(worker.wait_for_line, "esm worker: stopping")
    assert await client.health("") == NOT_SERVING
    assert await client.health("esm.v1.FunctionWorker") == NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.invoke({"action": "count"})
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    (tmp_path / "release").touch()
    assert result_of(await in_flight)["count"] == 1
    assert await asyncio.to_thread(worker.wait_exit) == 0


async def test_lambda_form_handler_resolves_from_the_cwd(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'app': event['n'] + 1}\n")
    package = tmp_path / "shop" / "orders"
    package.mkdir(parents=True)
    (tmp_path / "shop" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "consumer.py").write_text("def on_batch(event, context):\n    return {'batch': event['n']}\n")

    app = client_for(start_worker("app.handler", cwd=tmp_path))
    dotted = client_for(start_worker("shop.orders.consumer.on_batch", cwd=tmp_path))
    colon = client_for(start_worker("shop.orders.consumer:on_batch", cwd=tmp_path))
    assert result_of(await app.invoke({"n": 41})) == {"app": 42}
    assert result_of(await dotted.invoke({"n": 1})) == {"batch": 1}
    assert result_of(await colon.invoke({"n": 2})) == {"batch": 2}


@pytest.mark.parametrize(
    ("handler", "module_source", "expected"),
    [
        (
            "no_such_module.handler",
            None,
            "Unable to import module 'no_such_module': No module named 'no_such_module'",
        ),
        (
            "app.no_such_function",
            "def handler(event, context):\n    return 1\n",
            "Handler 'no_such_function' missing",
        ),
        (
            "app.handler",
            "def handler(event, context:\n",
            "Runtime.UserCodeSyntaxError: Syntax error in module 'app'",
        ),
        ("app.handler", "raise RuntimeError('DB_URL is not set')\n", "RuntimeError: DB_URL is not set"),
    ],
    ids=["missing-module", "missing-function", "syntax-error", "import-raises"],
)
def test_a_handler_that_cannot_be_imported_exits_1_with_one_clear_line(
    start_worker: StartWorker, tmp_path: Path, handler: str, module_source: str | None, expected: str
) -> None:
    if module_source is not None:
        (tmp_path / "app.py").write_text(module_source)
    worker = start_worker(handler, cwd=tmp_path)
    assert worker.wait_exit() == 1
    error_lines = [line for line in worker.stderr.splitlines() if "cannot load handler" in line]
    assert len(error_lines) == 1, worker.stderr
    assert f"'{handler}'" in error_lines[0]
    assert expected in error_lines[0]
    assert "serving" not in worker.stderr


def test_a_port_in_use_is_a_clear_start_up_error(start_worker: StartWorker) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        worker = start_worker("noop.handler", listen=address)
        assert worker.wait_exit() == 1
    # Only esm's own line: no raw gRPC core line (E1207 ... add_port.cc) before it.
    assert worker.stderr.splitlines() == [f"esm worker: cannot listen on {address}: Address already in use"]


def test_a_malformed_handler_argument_exits_1(start_worker: StartWorker) -> None:
    worker = start_worker("nodots")
    assert worker.wait_exit() == 1
    assert "handler 'nodots' is not valid" in worker.stderr


async def test_a_response_over_6_mb_is_lambdas_function_error(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    worker = start_worker(
        "large_response.handler",
        env={"ESM_RECORDER_FILE": str(tmp_path / "calls.txt"), "ESM_LARGE_RESPONSE_MB": "7"},
    )
    response = await client_for(worker).invoke({}, timeout_ms=5000)
    assert response.error.error_type == "Function.ResponseSizeTooLarge"
    assert response.error.error_message == (
        f"Response payload size ({7 * 1024 * 1024 + 2} bytes) exceeded maximum allowed payload size "
        "(6291556 bytes)."
    )
