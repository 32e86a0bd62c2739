"""What Lambda's execution environment gives a function, checked through real `esm worker`
processes: reserved and configured variables, a private TMPDIR, MemorySize enforced, output as
whole labelled lines, START/END/REPORT, provisioned concurrency, --config and /metrics."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from esm.netutil import free_port

from .grpc_client import result_of
from .worker_process import StartWorker

REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms"
    r"\tMemory Size: (?P<size>\d+) MB"
    r"\tMax Memory Used: \d+ MB(?P<init>\tInit Duration: [\d.]+ ms)?(?P<status>\tStatus: .*)?$"
)
LABELLED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(?P<id>[^\t]*)\t(?P<text>.*)$")


async def test_lambdas_reserved_variables_and_the_functions_own(
    start_worker: StartWorker, client_for: Any
) -> None:
    worker = start_worker(
        "sandbox_probe.handler",
        "--function-name",
        "orders",
        "--env",
        "STAGE=test",
        "--memory-size",
        "256",
        env={"AWS_REGION": "eu-west-1", "TZ": "America/New_York"},
    )
    seen = result_of(await client_for(worker).invoke({"action": "environ"}))
    environ = seen["environ"]
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "orders"
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/orders"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", environ["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert (environ["AWS_REGION"], environ["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-west-1")
    assert environ["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert environ["_HANDLER"] == "sandbox_probe.handler"
    assert environ["LAMBDA_TASK_ROOT"] == str(Path(__file__).resolve().parent.parent / "handlers")
    assert environ["TZ"] == ":UTC"  # Lambda's, whatever the worker's own
    assert environ["STAGE"] == "test"
    assert seen["tempdir"] == environ["TMPDIR"] and "/esm-worker-" in environ["TMPDIR"]


def test_a_reserved_variable_is_refused(start_worker: StartWorker) -> None:
    worker = start_worker("noop.handler", "--env", "AWS_REGION=x")
    assert worker.wait_exit() == 1
    assert "AWS_REGION: is one of Lambda's reserved environment variables" in worker.stderr


async def test_each_environment_has_its_own_tmpdir_emptied_when_replaced(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    client = client_for(start_worker("sandbox_probe.handler", "--concurrency", "2"))
    overlap = {"action": "environ", "barrier": str(tmp_path), "parties": 2}  # one in each environment
    first, second = await asyncio.gather(
        client.invoke(overlap, timeout_ms=20_000), client.invoke(overlap, timeout_ms=20_000)
    )
    assert result_of(first)["tempdir"] != result_of(second)["tempdir"]
    one = await client.invoke({"action": "write_tmp", "name": "state.txt"})
    assert result_of(one) == ["state.txt"]
    tempdir = None
    for _ in range(4):  # crash every environment: their replacements start empty
        response = await client.invoke({"action": "exit"})
        assert response.error.error_type == "Runtime.ExitError"
    for _ in range(2):
        seen = result_of(await client.invoke({"action": "environ"}))
        tempdir = Path(seen["tempdir"])
        assert list(tempdir.iterdir()) == []
    assert tempdir is not None


@pytest.mark.parametrize("mode", ["cgroup", "rss"])
async def test_memory_over_the_limit_is_lambdas_out_of_memory(
    start_worker: StartWorker, client_for: Any, mode: str
) -> None:
    worker = start_worker("sandbox_probe.handler", "--memory-size", "128", "--memory-enforcement", mode)
    client = client_for(worker)
    assert result_of(await client.invoke({"action": "allocate", "mb": 10})) == 1
    response = await client.invoke({"action": "allocate", "mb": 300}, timeout_ms=10_000, request_id="req-oom")
    assert response.error.error_type == "Runtime.OutOfMemory"
    assert (
        response.error.error_message == "RequestId: req-oom Error: Runtime exited with error: signal: killed"
    )
    assert result_of(await client.invoke({"action": "allocate", "mb": 10})) == 1, (
        "a fresh environment took its place"
    )
    worker.wait_for_line(r"REPORT RequestId: req-oom\t.*Status: error\tError Type: Runtime.OutOfMemory")
    expected = "cgroup v1 memory controller" if mode == "cgroup" else "a watch on resident memory"
    assert f"MemorySize 128 MB enforced by {expected}" in worker.stderr


async def test_output_lines_are_whole_and_carry_their_request_id(
    start_worker: StartWorker, client_for: Any
) -> None:
    worker = start_worker("sandbox_probe.handler", "--concurrency", "2")
    client = client_for(worker)
    marker = uuid.uuid4().hex
    width = 3000  # lines longer than a pipe's atomic write, from two environments at once
    await asyncio.gather(
        *(
            client.invoke(
                {"action": "lines", "marker": f"{marker}{n}", "count": 300, "width": width},
                request_id=f"r{n}",
            )
            for n in (0, 1)
        )
    )
    worker.stop()
    lines = [line for line in worker.stderr.splitlines() if marker in line]
    assert len(lines) == 600
    for line in lines:
        match = LABELLED.match(line)
        assert match is not None, line[:200]
        assert len(match["text"]) == width, "a line was cut or mixed with another"
        assert match["text"].startswith(f"{marker}{match['id'][1]}-"), "labelled with its own invocation"


async def test_start_end_report_around_every_invocation(start_worker: StartWorker, client_for: Any) -> None:
    worker = start_worker("sandbox_probe.handler", "--memory-size", "256")
    client = client_for(worker)
    await client.invoke({"action": "environ"}, request_id="req-a")
    await client.invoke({"action": "environ"}, request_id="req-b")
    worker.wait_for_line(r"^REPORT RequestId: req-b")
    lines = worker.stderr.splitlines()
    start = lines.index("START RequestId: req-a Version: $LATEST")
    assert lines[start + 1] == "END RequestId: req-a"
    first, second = (
        REPORT.match(lines[start + 2]),
        REPORT.match(lines[lines.index("END RequestId: req-b") + 1]),
    )
    assert first is not None and second is not None
    assert (first["id"], first["size"]) == ("req-a", "256")
    assert first["init"] is not None and second["init"] is None, "Init Duration only on the cold start"


async def test_provisioned_environments_start_before_serving_the_rest_on_demand(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    port = free_port()
    worker = start_worker(
        "sandbox_probe.handler",
        "--concurrency",
        "2",
        "--provisioned-concurrency",
        "1",
        "--metrics-port",
        str(port),
    )
    client = client_for(worker)
    assert "with 2 environments (1 initialised)" in worker.stderr
    assert metric(port, "esm_worker_environments_alive") == 1.0
    overlap = {"action": "environ", "barrier": str(tmp_path), "parties": 2}  # both run at once
    first, second = await asyncio.gather(
        client.invoke(overlap, timeout_ms=20_000), client.invoke(overlap, timeout_ms=20_000)
    )
    types = sorted(result_of(r)["environ"]["AWS_LAMBDA_INITIALIZATION_TYPE"] for r in (first, second))
    assert types == ["on-demand", "provisioned-concurrency"]
    assert metric(port, "esm_worker_environments_alive") == 2.0
    assert metric(port, "esm_worker_cold_starts_total") == 1.0
    assert metric(port, 'esm_worker_init_duration_seconds_count{initialization_type="on-demand"}') == 1.0
    assert metric(port, 'esm_worker_invocations_total{outcome="success"}') == 2.0


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


async def test_config_file_settings_with_flags_winning(
    start_worker: StartWorker, client_for: Any, tmp_path: Path
) -> None:
    config = tmp_path / "esm.json"
    function = {
        "FunctionName": "orders",
        "Endpoints": ["127.0.0.1:1"],
        "Timeout": 7,
        "MemorySize": 512,
        "Environment": {"Variables": {"STAGE": "from-config", "COLOR": "blue"}},
        "EphemeralStorage": {"Size": 1024},
    }
    config.write_text(json.dumps({"Functions": [function]}))
    worker = start_worker(
        "sandbox_probe.handler",
        "--config",
        str(config),
        "--function-name",
        "orders",
        "--env",
        "STAGE=from-flag",
        "--memory-size",
        "384",
    )
    response = await client_for(worker).invoke({"action": "environ"}, timeout_ms=0)
    environ = result_of(response)["environ"]
    assert (environ["STAGE"], environ["COLOR"]) == ("from-flag", "blue")
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "384"
    assert "MemorySize 384 MB enforced" in worker.stderr


def test_config_without_the_function_is_a_clear_error(start_worker: StartWorker, tmp_path: Path) -> None:
    config = tmp_path / "esm.json"
    config.write_text(json.dumps({"Functions": []}))
    worker = start_worker("noop.handler", "--config", str(config), "--function-name", "orders")
    assert worker.wait_exit() == 1
    assert f"--function-name 'orders': no such function in {config}" in worker.stderr


def test_a_bootstrap_that_cannot_run_is_one_clear_line(start_worker: StartWorker, tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/no/such/interpreter\n")
    bootstrap.chmod(0o755)
    worker = start_worker(
        f"--bootstrap={bootstrap}", "--handler", "x.y", "--function-name", "f", cwd=tmp_path
    )
    assert worker.wait_exit() == 1
    assert worker.stderr.splitlines() == [
        f"esm worker: cannot initialise the runtime '{bootstrap}': Runtime.InvalidEntrypoint: "
        f"cannot start {bootstrap}: No such file or directory"
    ]
