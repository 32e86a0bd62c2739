"""What tracing costs the batch loop, and that without `Tracing` it costs nothing.

    .venv/bin/python benchmarks/tracing_overhead.py [--batches 4000] [--batch-size 10] [--runs 5]

Each run drives one shard's real batch loop (esm.shard: Shard, Lane, the failure policy) and the
real FunctionInvoker (concurrency limiter, endpoint choice, metrics) over BATCHES batches, with
the gRPC stub replaced by one that answers at once in-process: what is left is exactly the
engine's own per-batch work, where a span would be built. Modes, each in a fresh interpreter and
interleaved run by run (the order rotates, so no mode always runs first); each run is the
median of three passes in one process after a warm-up:

- `main`: the same loop with main's code (a `git archive` of the branch `--baseline`), the
  baseline the others are compared to;
- `off`: this tree without `Tracing` (no span is built);
- `ratio0`: `Tracing` with SampleRatio 0 (spans started but not recorded, the context still sent);
- `ratio1`: `Tracing` with SampleRatio 1 (every span recorded; the exporter discards them, so
  the network is not measured).

Reported: the median of the runs in CPU microseconds per batch (the process's CPU time, export
thread included: on a machine shared with other work, wall time mostly measures the others), and
each mode's median over main's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODES = ("main", "off", "ratio0", "ratio1")


class IntFormat:
    """Records are ints; no filter."""

    def build_event(self, records: Sequence[int]) -> bytes:
        return b'{"records":[' + b",".join(str(r).encode() for r in records) + b"]}"

    def record_time(self, record: int) -> float:
        return time.time()

    def select(self, records: list[int]) -> list[int]:
        return records

    def index_of(self, records: Sequence[int], identifier: object) -> int | None:
        return None

    def unreadable_positions(self, records: Sequence[int]) -> list[int]:
        return []

    def lane_key(self, record: int) -> str | None:
        return None

    def order(self, record: int) -> int:
        return record

    def describe_position(self, record: int) -> str:
        return f"offset {record}"


class Checkpoints:
    def __init__(self, last: int) -> None:
        self.owned = True
        self.last = last
        self.reached = asyncio.Event()

    async def checkpoint_through(self, record: int) -> bool:
        if record == self.last:
            self.reached.set()
        return True


class InstantStub:
    """FunctionWorker's stub answering every call at once, in-process."""

    def __init__(self) -> None:
        from esm._proto.esm.v1 import function_pb2

        self._response = function_pb2.InvokeResponse(payload=b"null")

    async def Invoke(self, request: Any, timeout: float | None = None, metadata: Any = None) -> Any:
        return self._response


def _tracing(mode: str) -> Any:
    if mode in ("main", "off"):
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from esm.tracing.batch import BatchTracing

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    ratio = 0.0 if mode == "ratio0" else 1.0
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return BatchTracing(provider.get_tracer("bench"), "bench-uuid", "bench", "kafka://bench/t")


async def _measure(mode: str, batches: int, batch_size: int) -> float:
    from prometheus_client import CollectorRegistry

    from esm.dispatch.endpoints import Endpoint, EndpointPool
    from esm.dispatch.invoker import FunctionIdentity, FunctionInvoker
    from esm.dispatch.limiter import LocalLimiter
    from esm.metrics import Metrics
    from esm.shard.batching import BatchLimits
    from esm.shard.failures import FailurePolicy
    from esm.shard.lane import LaneServices
    from esm.shard.metrics import ShardMetrics
    from esm.shard.shard import Shard

    metrics = Metrics(CollectorRegistry())
    pool = EndpointPool([], time.monotonic)
    pool.endpoints.append(Endpoint("in-process", InstantStub(), None))  # type: ignore[arg-type]
    invoker = FunctionInvoker(FunctionIdentity("bench", 3.0), pool, LocalLimiter(4), metrics)
    tracing = _tracing(mode)
    services = LaneServices(
        format=IntFormat(),
        invoker=invoker,
        policy=FailurePolicy(),
        metrics=ShardMetrics.of_mapping(metrics, "bench"),
        limits=BatchLimits(batch_size, 0.0),
        **({} if tracing is None else {"tracing": tracing}),
    )
    total = batches * batch_size
    checkpoints = Checkpoints(total - 1)
    shard = Shard("bench-0", services, checkpoints)
    shard.deliver(list(range(total)), [100] * total)
    started = time.process_time()
    task = asyncio.create_task(shard.run())
    await checkpoints.reached.wait()
    elapsed = time.process_time() - started
    shard.request_shutdown()
    await task
    return elapsed / batches * 1e6


def _child(mode: str, batches: int, batch_size: int) -> None:
    asyncio.run(_measure(mode, max(1, batches // 10), batch_size))  # warm-up: imports, first calls
    # The median of three passes in this process: a moment of load from elsewhere counts once.
    passes = [asyncio.run(_measure(mode, batches, batch_size)) for _ in range(3)]
    print(json.dumps({"us_per_batch": statistics.median(passes)}))


def _main_tree(branch: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", branch, "esm"], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _run(mode: str, code: Path, args: argparse.Namespace) -> float:
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{REPO / 'benchmarks'}"}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--batches",
            str(args.batches),
            "--batch-size",
            str(args.batch_size),
        ],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout)["us_per_batch"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default="main", help="the branch whose code is the baseline")
    parser.add_argument("--json", help="write every run and the medians here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.batches, args.batch_size)
        return 0
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="esm-bench-main-") as tmp:
        trees = {"main": _main_tree(args.baseline, Path(tmp))}
        for run in range(args.runs):
            for mode in MODES[run % len(MODES) :] + MODES[: run % len(MODES)]:  # no mode always first
                results[mode].append(_run(mode, trees.get(mode, REPO), args))
            print(f"run {run + 1}: " + ", ".join(f"{m} {results[m][-1]:.1f}" for m in MODES), file=sys.stderr)
    medians = {mode: statistics.median(values) for mode, values in results.items()}
    print(f"{'mode':<8} {'us/batch (median)':>18} {'vs main':>8}")
    for mode in MODES:
        print(f"{mode:<8} {medians[mode]:>18.1f} {medians[mode] / medians['main']:>8.3f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"runs": results, "medians": medians, "args": vars(args)}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
