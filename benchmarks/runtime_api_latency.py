"""What the Runtime API costs: no-op invocations per second and invoke latency p50/p99 through
`esm worker`, for the Python handler path (esm's own runtime over a pipe), AWS's awslambdaric
through the Runtime API, and a POSIX shell bootstrap with curl, at concurrency 1 and 4.

    .venv/bin/python benchmarks/runtime_api_latency.py [--seconds 5] [--runs 3] [--json FILE]

Each run starts one worker per runtime with --concurrency C and drives it from C client tasks
over gRPC on loopback, each sending its next invocation as soon as the last one answered, for
`--seconds` after a warm-up. Latency is measured by the client (gRPC call to answer). Figures are
medians over the runs; the goal: the Runtime API (awslambdaric) adds at most 1 ms to the Python
path's p50. Needs the test extra (awslambdaric); the shell runtime needs curl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from esm._proto.esm.v1 import function_pb2, function_pb2_grpc
from esm.netutil import free_port

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "benchmarks" / "handlers"
RUNTIMES = ROOT / "tests" / "runtimes"
WARM_UP = 50


@dataclass(frozen=True)
class Runtime:
    name: str
    args: tuple[str, ...]


PYTHON = Runtime("python handler (pipe)", ("noop.handler",))
AWSLAMBDARIC = Runtime(
    "awslambdaric (Runtime API)",
    (
        "--bootstrap",
        str(RUNTIMES / "python" / "bootstrap"),
        "--handler",
        "noop.handler",
        "--function-name",
        "noop",
    ),
)
SHELL = Runtime(
    "shell + curl (Runtime API)",
    (
        "--bootstrap",
        str(RUNTIMES / "shell" / "bootstrap"),
        "--handler",
        "noop.handler",
        "--function-name",
        "noop",
    ),
)


@dataclass(frozen=True)
class Figures:
    runtime: str
    concurrency: int
    invocations_per_s: float
    p50_ms: float
    p99_ms: float


def start_worker(runtime: Runtime, concurrency: int) -> tuple[subprocess.Popen[bytes], str]:
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "esm",
            "worker",
            *runtime.args,
            "--listen",
            address,
            "--concurrency",
            str(concurrency),
        ],
        cwd=HANDLERS,
        env={**os.environ, "ESM_TEST_PYTHON": sys.executable},
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if b"esm worker: serving" in line:
            break
    else:
        raise SystemExit(f"{runtime.name}: the worker did not start (exit {process.wait()})")
    # The worker writes START/END/REPORT per invocation: keep reading so its pipe never fills.
    subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)
    return process, address


async def drive(address: str, concurrency: int, seconds: float) -> Figures:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = function_pb2_grpc.FunctionWorkerStub(channel)  # type: ignore[no-untyped-call]

        async def call() -> float:
            request = function_pb2.InvokeRequest(
                request_id=str(uuid.uuid4()), timeout_ms=10_000, payload=b"{}"
            )
            started = time.perf_counter()
            response = await stub.Invoke(request, timeout=30)
            if response.HasField("error"):
                raise SystemExit(f"the no-op handler failed: {response.error}")
            return time.perf_counter() - started

        for _ in range(WARM_UP):
            await asyncio.gather(*(call() for _ in range(concurrency)))
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                latencies.append(await call())

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Figures(
        runtime="",
        concurrency=concurrency,
        invocations_per_s=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
    )


def measure(runtime: Runtime, concurrency: int, seconds: float) -> Figures:
    process, address = start_worker(runtime, concurrency)
    try:
        figures = asyncio.run(drive(address, concurrency, seconds))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return Figures(runtime.name, concurrency, figures.invocations_per_s, figures.p50_ms, figures.p99_ms)


def median(runs: list[Figures]) -> Figures:
    return Figures(
        runs[0].runtime,
        runs[0].concurrency,
        statistics.median(f.invocations_per_s for f in runs),
        statistics.median(f.p50_ms for f in runs),
        statistics.median(f.p99_ms for f in runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per runtime and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write every run's figures and the medians here")
    args = parser.parse_args()
    runs: dict[tuple[str, int], list[Figures]] = {}
    for run in range(args.runs):
        # Interleaved, so slow phases of a shared machine fall on every runtime alike.
        for concurrency in (1, 4):
            for runtime in (PYTHON, AWSLAMBDARIC, SHELL):
                figures = measure(runtime, concurrency, args.seconds)
                runs.setdefault((runtime.name, concurrency), []).append(figures)
                print(f"run {run + 1}: {figures}", file=sys.stderr)
    medians = {key: median(values) for key, values in runs.items()}
    print(f"{'runtime':<28} {'C':>2} {'inv/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for figures in medians.values():
        print(
            f"{figures.runtime:<28} {figures.concurrency:>2} {figures.invocations_per_s:>8.0f} "
            f"{figures.p50_ms:>8.2f} {figures.p99_ms:>8.2f}"
        )
    for concurrency in (1, 4):
        added = medians[(AWSLAMBDARIC.name, concurrency)].p50_ms - medians[(PYTHON.name, concurrency)].p50_ms
        verdict = "meets" if added <= 1.0 else "misses"
        goal = f"{verdict} the 1 ms goal"
        print(f"concurrency {concurrency}: the Runtime API adds {added:+.2f} ms to p50 ({goal})")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runs": [asdict(f) for values in runs.values() for f in values],
                    "medians": [asdict(f) for f in medians.values()],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
