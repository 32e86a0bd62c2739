"""Kinesis record-to-handler latency: the engine against Lambda-style polling once a second.

    .venv/bin/python benchmarks/kinesis_latency.py [--runs 3] [--rate 200] [--seconds 20] [--json out]

Starts its own kinesis-mock (tests/stream_services.py, installed by scripts/test.sh) on a free
port. Each run measures, one after the other, each on a fresh 4-shard stream:
(a) baseline: a Lambda-model poller, one thread per shard calling GetRecords once a second and
    "delivering" in-process;
(b) engine: `esm worker` with this module's `handler` and `esm run` with one Kinesis mapping
    (BatchSize 100, batching window 0, PollingIntervalInSeconds from --poll-interval).
Both are warmed up first (a record on every shard has been delivered), then records are put at a
fixed rate in small put_records batches. Every record's data carries its put time; the receiver
(the baseline's poller right after GetRecords returns, the engine's handler on entry) writes
receive time - put time through the same function (`record_latencies`). The table shows
p50/p95/p99 of both and the engine/baseline p99 ratio per run, and the medians over the runs.
See benchmarks/README.md.

The worker imports this file as `benchmarks.kinesis_latency`, so the import path set-up below
runs in its execution environments too.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The shared benchmark helpers (kafka_bench) and kinesis-mock's launcher (tests/stream_services.py)
# are imported by top-level name: as a script this file has only benchmarks/ on sys.path, and in
# the worker (which imports `benchmarks.kinesis_latency` from the repository root) neither.
_BENCHMARKS_DIR = Path(__file__).resolve().parent
for _path in (_BENCHMARKS_DIR, _BENCHMARKS_DIR.parent / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import argparse  # noqa: E402
import base64  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterable, Iterator, Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any, Protocol  # noqa: E402

import boto3  # noqa: E402
from charts import save_report  # noqa: E402
from kafka_bench import environment  # noqa: E402
from kafka_bench.engine import (  # noqa: E402
    EngineUnavailable,
    require_engine,
    start_daemon,
    start_worker,
    write_checked_config,
)
from kafka_bench.latency import LatencyResult  # noqa: E402
from kafka_bench.stats import median_or_none  # noqa: E402
from stream_services import CREDENTIALS, EmulatorError, KinesisMock  # noqa: E402

from esm.config.mapping import DEFAULT_POLLING_INTERVAL_SECONDS  # noqa: E402
from esm.demo.children import ChildProcess as ManagedProcess  # noqa: E402
from esm.netutil import free_port  # noqa: E402

SHARDS = 4
BATCH_SIZE = 100
LAMBDA_POLL_INTERVAL_S = 1.0  # Lambda reads each shard once a second
GET_RECORDS_LIMIT = 10_000  # GetRecords' maximum: one poll a second never falls behind
PARTS = ("baseline", "engine")
HANDLER = "benchmarks.kinesis_latency:handler"
FUNCTION_NAME = "bench-kinesis-latency"
LATENCY_DIR_ENV = "ESM_BENCH_LATENCY_DIR"  # where `handler` writes; set on the worker
WORKER_CONCURRENCY = SHARDS  # one batch in flight per shard (ParallelizationFactor 1)
STREAM_ACTIVE_TIMEOUT_S = 30.0
WARMUP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0


# -- the measurement, shared by the engine's handler and the baseline --------------------------


def stamp(record_id: int, put_ms: float) -> bytes:
    """A measured record's data: its id (to count each record once) and its put time."""
    return json.dumps({"id": record_id, "put_ms": put_ms}).encode()


def warmup_stamp(shard_id: str) -> bytes:
    return json.dumps({"warmup": shard_id}).encode()


def record_latencies(records: Iterable[tuple[str, bytes]], received_ms: float, out_dir: Path) -> None:
    """Write `id latency_ms` per measured record to this thread's file in `out_dir`; a warm-up
    record leaves a marker file instead. `records` are (where, data) pairs, `where` naming the
    record in errors. One file per process and thread, so writers never interleave."""
    lines: list[str] = []
    for where, data in records:
        try:
            fields = json.loads(data)
            if "warmup" in fields:
                (out_dir / f"warmup-{fields['warmup']}").touch()
            else:
                lines.append(f"{int(fields['id'])} {received_ms - float(fields['put_ms']):.2f}\n")
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(
                f"record {where}: data is not a benchmark stamp (id, put_ms) or warm-up: {data[:80]!r}"
            ) from error
    if lines:
        with (out_dir / f"latency-{os.getpid()}-{threading.get_ident()}.txt").open("a") as out:
            out.write("".join(lines))


def handler(event: dict[str, Any], context: Any) -> None:
    """The engine's function: the Lambda Kinesis event's records, timed on entry."""
    received_ms = time.time() * 1000.0
    records = (
        (record.get("eventID", "?"), base64.b64decode(record["kinesis"]["data"]))
        for record in event["Records"]
    )
    record_latencies(records, received_ms, Path(os.environ[LATENCY_DIR_ENV]))


@dataclass(frozen=True)
class Collected:
    latencies_ms: list[float]
    duplicates: int  # records delivered more than once (the first delivery is measured)


def read_latencies(out_dir: Path) -> Collected:
    first: dict[int, float] = {}
    duplicates = 0
    for path in sorted(out_dir.glob("latency-*.txt")):
        # Only whole lines: the text after the last newline may be a write in progress.
        for line in path.read_text().split("\n")[:-1]:
            parts = line.split()
            record_id = int(parts[0])
            if record_id in first:
                duplicates += 1
            else:
                first[record_id] = float(parts[1])
    return Collected(list(first.values()), duplicates)


# -- the stream and the producer ---------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    name: str
    arn: str
    shard_ids: list[str]
    # Each shard's StartingHashKey: an ExplicitHashKey that puts a record on that shard.
    hash_keys: list[str]


def create_stream(client: Any, name: str, shards: int) -> Stream:
    client.create_stream(StreamName=name, ShardCount=shards)
    deadline = time.monotonic() + STREAM_ACTIVE_TIMEOUT_S
    while True:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"stream {name} is still {summary['StreamStatus']} after {STREAM_ACTIVE_TIMEOUT_S}s"
            )
        time.sleep(0.05)
    listed = client.list_shards(StreamName=name)["Shards"]
    return Stream(
        name,
        summary["StreamARN"],
        [shard["ShardId"] for shard in listed],
        [shard["HashKeyRange"]["StartingHashKey"] for shard in listed],
    )


def put_records(client: Any, stream: Stream, entries: list[dict[str, Any]]) -> None:
    reply = client.put_records(StreamName=stream.name, Records=entries)
    if reply.get("FailedRecordCount"):
        failed = next(r for r in reply["Records"] if "ErrorCode" in r)
        raise RuntimeError(
            f"put_records on {stream.name}: {reply['FailedRecordCount']} of {len(entries)} records "
            f"failed, first with {failed['ErrorCode']}: {failed.get('ErrorMessage')}"
        )


def put_warmups(client: Any, stream: Stream) -> None:
    put_records(
        client,
        stream,
        [
            {"Data": warmup_stamp(shard_id), "PartitionKey": "warmup", "ExplicitHashKey": hash_key}
            for shard_id, hash_key in zip(stream.shard_ids, stream.hash_keys, strict=True)
        ],
    )


def produce_paced(
    client: Any, stream: Stream, rate_per_s: int, seconds: float, put_batch: int
) -> tuple[int, float]:
    """Put `rate * seconds` records, round-robin over the shards, in put_records calls of
    `put_batch`, call k at start + k * put_batch / rate (a schedule, so a slow call does not shift
    the ones after). Each record is stamped with the time its call starts. Returns (records,
    seconds the puts took)."""
    count = int(rate_per_s * seconds)
    start = time.monotonic()
    for first in range(0, count, put_batch):
        delay = start + first / rate_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer to the wall clock is the point here
        put_ms = time.time() * 1000.0
        entries = [
            {
                "Data": stamp(i, put_ms),
                "PartitionKey": str(i),
                "ExplicitHashKey": stream.hash_keys[i % len(stream.hash_keys)],
            }
            for i in range(first, min(first + put_batch, count))
        ]
        put_records(client, stream, entries)
    return count, time.monotonic() - start


# -- the receivers -----------------------------------------------------------------------------


class Receiver(Protocol):
    def failure(self) -> str | None:
        """Why the receiver can no longer deliver (a process exited, a thread failed), or None."""

    def diagnostics(self) -> str:
        """What to show when it delivers too little: the end of its logs."""


# One shard for a baseline poller: its name, a first iterator (TRIM_HORIZON), and one GetRecords
# on an iterator: the records as (where, data) pairs and the next iterator (None: shard ended).
ShardRecords = tuple[list[tuple[str, bytes]], str | None]


@dataclass(frozen=True)
class PolledShard:
    name: str
    first_iterator: Callable[[], str]
    get_records: Callable[[str], ShardRecords]


class LambdaStylePoller:
    """The baseline: Lambda's model of one poller per shard. Each thread gets a TRIM_HORIZON
    iterator, then calls GetRecords every `interval_s` (on a fixed schedule) and "delivers" what
    it returned in-process, timed as soon as GetRecords returns."""

    def __init__(self, shards: Sequence[PolledShard], out_dir: Path, interval_s: float) -> None:
        self._stop = threading.Event()
        self._errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._poll, args=(shard, out_dir, interval_s), daemon=True)
            for shard in shards
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def failure(self) -> str | None:
        return "; ".join(self._errors) or None

    def diagnostics(self) -> str:
        return ""

    def _poll(self, shard: PolledShard, out_dir: Path, interval_s: float) -> None:
        try:
            iterator: str | None = shard.first_iterator()
            next_poll = time.monotonic()
            while iterator is not None and not self._stop.is_set():
                records, iterator = shard.get_records(iterator)
                record_latencies(records, time.time() * 1000.0, out_dir)
                next_poll += interval_s
                self._stop.wait(max(0.0, next_poll - time.monotonic()))
        except Exception as error:  # surfaced to the main thread by failure()
            self._errors.append(f"baseline poller of {shard.name}: {type(error).__name__}: {error}")


def kinesis_shard(client: Any, stream: Stream, shard_id: str) -> PolledShard:
    def first_iterator() -> str:
        return str(
            client.get_shard_iterator(
                StreamName=stream.name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )

    def get_records(iterator: str) -> ShardRecords:
        reply = client.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        records = [(f"{shard_id}:{r['SequenceNumber']}", r["Data"]) for r in reply["Records"]]
        return records, reply.get("NextShardIterator")

    return PolledShard(shard_id, first_iterator, get_records)


@dataclass(frozen=True)
class EngineProcesses:
    worker: ManagedProcess
    daemon: ManagedProcess

    def failure(self) -> str | None:
        for process in (self.daemon, self.worker):
            if process.exit_code() is not None:
                return process.describe_exit()
        return None

    def diagnostics(self) -> str:
        return f"\n{self.daemon.log_path} ends with:\n{self.daemon.log_tail()}"


def engine_config(
    store_url: str,
    worker_endpoint: str,
    stream_arn: str,
    poll_interval_s: float | None,
    function_name: str = FUNCTION_NAME,
) -> dict[str, Any]:
    """One function (the benchmark worker) and one stream mapping (Kinesis, DynamoDB Streams)."""
    mapping: dict[str, Any] = {
        "UUID": str(uuid.uuid4()),
        "FunctionName": function_name,
        "EventSourceArn": stream_arn,
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": BATCH_SIZE,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 1,
    }
    if poll_interval_s is not None:
        mapping["PollingIntervalInSeconds"] = poll_interval_s
    return {
        "Store": store_url,
        "Metrics": {"Host": "127.0.0.1", "Port": free_port()},
        "Functions": [{"FunctionName": function_name, "Endpoints": [worker_endpoint], "Timeout": 30}],
        "EventSourceMappings": [mapping],
    }


# -- one part of a run: warm up, produce, collect ----------------------------------------------


@dataclass(frozen=True)
class PartResult:
    latency: LatencyResult
    produce_seconds: float  # more than --seconds: the producer could not keep the rate
    duplicates: int


def measure(
    client: Any, stream: Stream, out_dir: Path, receiver: Receiver, args: argparse.Namespace
) -> PartResult:
    put_warmups(client, stream)
    _wait_until(
        lambda: all((out_dir / f"warmup-{shard_id}").exists() for shard_id in stream.shard_ids),
        receiver,
        WARMUP_TIMEOUT_S,
        lambda: f"the warm-up records did not all reach the receiver within {WARMUP_TIMEOUT_S}s",
    )
    count, produce_seconds = produce_paced(client, stream, args.rate, args.seconds, args.put_batch)
    _wait_until(
        lambda: len(read_latencies(out_dir).latencies_ms) >= count,
        receiver,
        DRAIN_TIMEOUT_S,
        lambda: f"only {len(read_latencies(out_dir).latencies_ms)} of {count} records were delivered",
    )
    collected = read_latencies(out_dir)
    return PartResult(LatencyResult.of(collected.latencies_ms), produce_seconds, collected.duplicates)


def measure_baseline(endpoint: str, stream: Stream, workdir: Path, args: argparse.Namespace) -> PartResult:
    out_dir = workdir / "received"
    out_dir.mkdir()
    client = kinesis_client(endpoint)
    shards = [kinesis_shard(kinesis_client(endpoint), stream, shard_id) for shard_id in stream.shard_ids]
    poller = LambdaStylePoller(shards, out_dir, LAMBDA_POLL_INTERVAL_S)
    poller.start()
    try:
        return measure(client, stream, out_dir, poller, args)
    finally:
        poller.stop()


def measure_engine(
    endpoint: str, stream: Stream, workdir: Path, args: argparse.Namespace, poll_interval_s: float | None
) -> PartResult:
    client = kinesis_client(endpoint)
    return run_engine(
        HANDLER,
        FUNCTION_NAME,
        stream.arn,
        workdir,
        poll_interval_s,
        lambda out_dir, receiver: measure(client, stream, out_dir, receiver, args),
    )


def run_engine(
    handler: str,
    function_name: str,
    stream_arn: str,
    workdir: Path,
    poll_interval_s: float | None,
    measure_with: Callable[[Path, Receiver], PartResult],
) -> PartResult:
    """Starts the worker (with `handler`) and the daemon (one mapping on `stream_arn`), and
    measures with them: `measure_with(directory the handler writes to, the engine as receiver)`."""
    out_dir = workdir / "received"
    out_dir.mkdir()
    worker, worker_endpoint = start_worker(
        handler, workdir, concurrency=WORKER_CONCURRENCY, env={LATENCY_DIR_ENV: str(out_dir)}
    )
    try:
        store_url = f"sqlite:///{(workdir / 'store.sqlite').resolve()}"
        config = write_checked_config(
            workdir, engine_config(store_url, worker_endpoint, stream_arn, poll_interval_s, function_name)
        )
        daemon = start_daemon(config, workdir)
        try:
            return measure_with(out_dir, EngineProcesses(worker, daemon))
        finally:
            daemon.stop()
    finally:
        worker.stop()


def _wait_until(
    done: Callable[[], bool], receiver: Receiver, timeout_s: float, failure: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        problem = receiver.failure()
        if problem is not None:
            raise RuntimeError(problem)
        if time.monotonic() > deadline:
            raise RuntimeError(failure() + receiver.diagnostics())
        time.sleep(0.05)


def kinesis_client(endpoint: str) -> Any:
    return boto3.client("kinesis", endpoint_url=endpoint, **CREDENTIALS)


@contextlib.contextmanager
def emulator_environment(
    endpoint: str, variables: Sequence[str] = ("AWS_ENDPOINT_URL_KINESIS",)
) -> Iterator[None]:
    """Point the engine's processes (which copy our environment, see kafka_bench.engine) at the
    emulator, as a deployment points them at AWS: standard AWS variables only (`variables` name
    the endpoint)."""
    values = {
        **dict.fromkeys(variables, endpoint),
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- runs, medians, table ----------------------------------------------------------------------


@dataclass
class RunResult:
    baseline: PartResult | None = None
    engine: PartResult | None = None

    def figures(self) -> dict[str, float | None]:
        """The numbers that get a median across runs."""
        engine = self.engine.latency if self.engine else None
        baseline = self.baseline.latency if self.baseline else None
        return {
            "engine_p50_ms": engine.p50_ms if engine else None,
            "engine_p95_ms": engine.p95_ms if engine else None,
            "engine_p99_ms": engine.p99_ms if engine else None,
            "baseline_p50_ms": baseline.p50_ms if baseline else None,
            "baseline_p95_ms": baseline.p95_ms if baseline else None,
            "baseline_p99_ms": baseline.p99_ms if baseline else None,
            "p99_ratio": engine.p99_ms / baseline.p99_ms if engine and baseline else None,
        }


def one_run(args: argparse.Namespace, endpoint: str, index: int, workdir: Path) -> RunResult:
    result = RunResult()
    client = kinesis_client(endpoint)
    for part in args.parts:
        stream = create_stream(client, f"bench-{index}-{part}-{uuid.uuid4().hex[:8]}", SHARDS)
        part_dir = workdir / f"run{index}-{part}"
        part_dir.mkdir()
        _say(f"run {index}: ({part}) {args.rate} records/s for {args.seconds}s on {stream.name}")
        if part == "baseline":
            result.baseline = measure_baseline(endpoint, stream, part_dir, args)
        else:
            result.engine = measure_engine(endpoint, stream, part_dir, args, args.poll_interval)
    return result


def medians(runs: list[RunResult]) -> dict[str, float | None]:
    keys = runs[0].figures().keys()
    return {key: median_or_none([run.figures()[key] for run in runs]) for key in keys}


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(
    runs: list[RunResult],
    median: dict[str, float | None],
    baseline_title: str = "1s-poll",
    baseline_words: str = "Lambda-style 1 s polling",
) -> str:
    """Per run and median: engine and baseline percentiles, p99 ratio. The baseline's column
    title and name in words are the caller's (each stream benchmark has its own poller)."""
    columns = [
        ("engine_p50_ms", "engine p50", 1),
        ("engine_p95_ms", "p95", 1),
        ("engine_p99_ms", "p99", 1),
        ("baseline_p50_ms", f"{baseline_title} p50", 1),
        ("baseline_p95_ms", "p95", 1),
        ("baseline_p99_ms", "p99", 1),
        ("p99_ratio", "p99 ratio", 2),
    ]
    rows = [f"{'run':>6} " + " ".join(f"{title:>11}" for _, title, _ in columns) + "   (ms)"]
    labelled = [(str(i), run.figures()) for i, run in enumerate(runs, 1)] + [("median", median)]
    for label, figures in labelled:
        rows.append(
            f"{label:>6} " + " ".join(f"{_fmt(figures[key], digits):>11}" for key, _, digits in columns)
        )
    engine_p99, baseline_p99, ratio = median["engine_p99_ms"], median["baseline_p99_ms"], median["p99_ratio"]
    if engine_p99 is not None and baseline_p99 is not None and ratio is not None:
        rows.append(
            f"engine p99 {engine_p99:.0f} ms vs {baseline_words} p99 {baseline_p99:.0f} ms: "
            f"ratio {ratio:.2f} (median of the runs' ratios)"
        )
    return "\n".join(rows)


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "runs": args.runs,
        "parts": list(args.parts),
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "put_batch": args.put_batch,
        "shards": SHARDS,
        "batch_size": BATCH_SIZE,
        "polling_interval_s": _poll_interval(args),
        "baseline_poll_interval_s": LAMBDA_POLL_INTERVAL_S,
        "emulator": "kinesis-mock (kinesis-local@0.6.2)",
    }


def report(args: argparse.Namespace, runs: list[RunResult]) -> dict[str, Any]:
    return runs_report(run_settings(args), runs)


def runs_report(fixed: dict[str, Any], runs: list[RunResult]) -> dict[str, Any]:
    """The JSON report: the settings, every run's parts and figures, the medians."""
    return {
        "settings": fixed,
        "runs": [
            {
                "baseline": asdict(run.baseline) if run.baseline else None,
                "engine": asdict(run.engine) if run.engine else None,
                "figures": run.figures(),
            }
            for run in runs
        ],
        "median": medians(runs),
    }


# -- the sweep over PollingIntervalInSeconds (--poll-intervals) ---------------------------------


def _figures(part: PartResult) -> dict[str, float]:
    return {**asdict(part.latency), "duplicates": part.duplicates, "produce_seconds": part.produce_seconds}


def sweep_poll_intervals(args: argparse.Namespace, endpoint: str, workdir: Path) -> dict[str, Any]:
    """Each run: the 1 s poller once (if asked for), then the engine at every interval, in an
    order rotating from run to run; each point's figures are the medians over the runs. The
    shape is what benchmarks/charts.py reads."""
    client = kinesis_client(endpoint)
    intervals: list[float] = args.poll_intervals
    runs: list[dict[float, dict[str, float]]] = []
    baselines: list[dict[str, float]] = []
    for index in range(args.runs):
        if "baseline" in args.parts:
            stream = create_stream(client, f"sweep-{index}-baseline-{uuid.uuid4().hex[:8]}", SHARDS)
            part_dir = workdir / f"sweep{index}-baseline"
            part_dir.mkdir()
            _say(f"sweep run {index + 1}: (baseline) 1 s poller, {args.rate} records/s for {args.seconds}s")
            baselines.append(_figures(measure_baseline(endpoint, stream, part_dir, args)))
        figures: dict[float, dict[str, float]] = {}
        shift = index % len(intervals)
        for interval in [*intervals[shift:], *intervals[:shift]]:
            stream = create_stream(client, f"sweep-{index}-{interval:g}-{uuid.uuid4().hex[:8]}", SHARDS)
            part_dir = workdir / f"sweep{index}-engine-{interval:g}"
            part_dir.mkdir()
            _say(f"sweep run {index + 1}: (engine) PollingIntervalInSeconds {interval:g}")
            figures[interval] = _figures(measure_engine(endpoint, stream, part_dir, args, interval))
        runs.append(figures)
    points = []
    for interval in intervals:
        per_run = [run[interval] for run in runs]
        median = {key: median_or_none([f[key] for f in per_run]) for key in per_run[0]}
        points.append({"poll_interval_s": interval, "runs": per_run, "median": median})
    sweep: dict[str, Any] = {
        "fixed": {
            "shards": SHARDS,
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "batch_size": BATCH_SIZE,
        },
        "points": points,
    }
    if baselines:
        sweep["baseline"] = {
            "poll_interval_s": LAMBDA_POLL_INTERVAL_S,
            "runs": baselines,
            "median": {key: median_or_none([b[key] for b in baselines]) for key in baselines[0]},
        }
    return sweep


def sweep_table(sweep: dict[str, Any]) -> str:
    rows = [f"{'interval s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   (engine, medians of the runs)"]
    for point in sweep["points"]:
        median = point["median"]
        rows.append(
            f"{point['poll_interval_s']:>10g} "
            + " ".join(f"{_fmt(median[k], 1):>8}" for k in ("p50_ms", "p95_ms", "p99_ms"))
        )
    if "baseline" in sweep:
        median = sweep["baseline"]["median"]
        rows.append(
            f"{'1 s poll':>10} "
            + " ".join(f"{_fmt(median[k], 1):>8}" for k in ("p50_ms", "p95_ms", "p99_ms"))
        )
    return "\n".join(rows)


def _poll_interval(args: argparse.Namespace) -> float:
    return DEFAULT_POLLING_INTERVAL_SECONDS if args.poll_interval is None else float(args.poll_interval)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_arguments(parser, rate=200, what="records put")
    parser.add_argument("--put-batch", type=int, default=5, help="records per put_records call")
    parser.add_argument(
        "--poll-intervals",
        default=None,
        metavar="S1,S2,...",
        help="instead of the runs: the engine at each PollingIntervalInSeconds (a sweep)",
    )
    parser.add_argument(
        "--charts", type=Path, default=None, help="draw the sweep's PNG chart into this directory"
    )
    args = parser.parse_args(argv)
    if args.put_batch < 1:
        parser.error("--put-batch must be at least 1")
    if args.poll_intervals is not None:
        try:
            args.poll_intervals = [float(v) for v in args.poll_intervals.split(",") if v.strip()]
        except ValueError:
            parser.error(f"--poll-intervals: expected seconds like 0.1,0.25,1, got {args.poll_intervals!r}")
        if not args.poll_intervals or min(args.poll_intervals) <= 0:
            parser.error("--poll-intervals: give one or more positive intervals")
    return checked_run_arguments(parser, args)


def add_run_arguments(parser: argparse.ArgumentParser, rate: int, what: str) -> None:
    """The options every stream latency benchmark has."""
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=rate, help=f"{what} per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to produce, per part")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="the mapping's PollingIntervalInSeconds "
        f"(default: the engine's, {DEFAULT_POLLING_INTERVAL_SECONDS})",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all runs and medians here")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )


def checked_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        parser.error(f"--parts: expected a comma-separated subset of {','.join(PARTS)}, got {args.parts!r}")
    if args.runs < 1 or args.rate < 1:
        parser.error("--runs and --rate must be at least 1")
    if args.seconds <= 0 or args.rate * args.seconds < 1:
        parser.error("--seconds must be positive and long enough for one record at --rate")
    args.parts = parts
    return args


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # Kept when a run fails: the engine's and the emulator's logs are in it.
    workdir = Path(tempfile.mkdtemp(prefix="esm-kinesis-bench-"))
    try:
        if "engine" in args.parts:
            require_engine()
        emulator = KinesisMock(workdir / "kinesis-mock.log").start()
        try:
            _say(f"kinesis-mock on {emulator.endpoint}; work directory {workdir}")
            with emulator_environment(emulator.endpoint):
                if args.poll_intervals is not None:
                    env = environment.started()
                    sweep = sweep_poll_intervals(args, emulator.endpoint, workdir)
                    env = environment.finished(env)
                else:
                    runs = [one_run(args, emulator.endpoint, i, workdir) for i in range(1, args.runs + 1)]
        finally:
            emulator.stop()
    except (EngineUnavailable, EmulatorError) as error:
        print(f"error: {error}\n(logs in {workdir})", file=sys.stderr)
        return 2
    except BaseException:
        _say(f"failed; logs in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    if args.poll_intervals is not None:
        return _finish_sweep(args, env, sweep)
    result = report(args, runs)
    print(
        f"engine PollingIntervalInSeconds {_poll_interval(args)}; baseline: GetRecords every "
        f"{LAMBDA_POLL_INTERVAL_S:g} s per shard; {args.rate} records/s for {args.seconds:g} s, "
        f"{SHARDS} shards"
    )
    print(table(runs, result["median"]))
    save_report(result, args.json, None, _say)
    return 0


def _finish_sweep(args: argparse.Namespace, env: dict[str, Any], sweep: dict[str, Any]) -> int:
    result = {
        "environment": env,
        "settings": {**run_settings(args), "poll_intervals_s": args.poll_intervals},
        "sweeps": {"latency_by_poll_interval": sweep},
    }
    print(f"{args.rate} records/s for {args.seconds:g} s, {SHARDS} shards, {args.runs} runs")
    print(sweep_table(sweep))
    save_report(result, args.json, args.charts, _say)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
