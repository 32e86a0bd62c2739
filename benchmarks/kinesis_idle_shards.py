"""What idle Kinesis shards cost the daemon: CPU per shard per second, idle and busy, for each
GetRecords transport (esm's lean JSON client against boto3's full pipeline) in the same run.

    .venv/bin/python benchmarks/kinesis_idle_shards.py [--shards 100] [--runs 3] [--seconds 15]
        [--rate 100] [--transports lean,botocore] [--idle-interval S] [--py-spy DIR] [--json out.json]

Starts its own kinesis-mock on a free port (installed by scripts/test.sh) and, per run and
transport (ESM_AWS_GETRECORDS=lean or botocore, in alternating order), a worker and a daemon with
one mapping (LATEST, default PollingIntervalInSeconds; IdlePollingIntervalInSeconds from
--idle-interval, the default when absent) on a fresh stream of --shards shards. Once the daemon
owns every shard (esm_partitions_owned) and the idle shards' back-off has had time to reach that
interval (esm.sources.read_pacing), it measures the daemon's CPU time (user +
system, /proc, its process tree) over --seconds with every shard idle, then again while --rate
records/s go to one shard. Reported: % of one core, idle; CPU ms per idle shard per second; reads
per shard per second and CPU per read (from esm_shard_reads_total: a slow emulator lowers the read
rate, so CPU per read is the figure that compares); the busy shard's extra CPU ms per second; the
lean/botocore ratio of CPU per read; the busy shard's put-to-handler latency (p50/p99, through
kinesis_latency's handler and stamps) beside the idle ones, the latency of the first records put
after the idle phase, the busy shard's p99 without the records put in its first second (those can
meet the idle back-off: the first read after the idle phase comes up to the idle interval late),
and the reads per second of all shards while one is busy. --transports
picks a subset. Goal (issue 15): 100 idle shards at most 10 % of one core while the busy
shard's p99 stays within 250 ms. CPU time does not depend much on what else the machine runs,
unlike wall-clock figures; kinesis-mock's own CPU is not counted.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCHMARKS_DIR = Path(__file__).resolve().parent
for _path in (_BENCHMARKS_DIR, _BENCHMARKS_DIR.parent / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
from kafka_bench.engine import start_daemon, start_worker, write_checked_config  # noqa: E402
from kafka_bench.proctree import cpu_seconds  # noqa: E402
from kinesis_latency import LATENCY_DIR_ENV, read_latencies, stamp  # noqa: E402
from stream_services import CREDENTIALS, KinesisMock, wait_stream_active  # noqa: E402

from esm.config.mapping import DEFAULT_IDLE_POLLING_INTERVAL_SECONDS  # noqa: E402
from esm.netutil import free_port  # noqa: E402
from esm.percentiles import percentile  # noqa: E402
from esm.sources.aws_clients import GET_RECORDS_CLIENT_ENV  # noqa: E402
from esm.sources.read_pacing import QUIET_FRACTION  # noqa: E402

TRANSPORTS = ("lean", "botocore")
FUNCTION_NAME = "bench-idle-shards"
# Records the busy shard's put-to-handler latency (kinesis_latency's handler, its stamps).
HANDLER = "benchmarks.kinesis_latency:handler"
DRAIN_S = 10.0  # how long the busy shard's last records may take to arrive
OWN_TIMEOUT_S = 120.0
SETTLE_S = 6.0  # the last shards' first reads (iterators, descriptions) are over


@dataclass(frozen=True)
class Measurement:
    transport: str
    idle_core_percent: float
    idle_ms_per_shard_second: float
    idle_reads_per_shard_second: float
    idle_us_per_read: float
    busy_extra_ms_per_second: float
    busy_p50_ms: float  # the busy shard's put-to-handler latency beside the idle shards
    busy_p99_ms: float
    # The first put's records, after the whole idle phase: as fast as the others?
    first_after_idle_ms: float
    # The busy shard's p99 without the records put in its first second, the ones that can meet
    # the idle back-off (IdlePollingIntervalInSeconds): the p99 of a shard that keeps getting records.
    busy_p99_after_1s_ms: float
    busy_reads_per_second: float  # reads of all shards during the busy phase


def _say(message: str) -> None:
    print(f"[kinesis_idle_shards] {message}", file=sys.stderr, flush=True)


def metric_sum(metrics_url: str, name: str) -> float:
    """The sum of a metric's series in the daemon's /metrics (0 while it does not answer)."""
    try:
        text = urllib.request.urlopen(metrics_url, timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


def cpu_over(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return cpu_seconds(pid) - before


def put_steadily(client: Any, stream: str, rate: int, seconds: float, hash_key: str) -> tuple[int, int]:
    """`rate` records/s, 10 puts a second, all to the shard owning `hash_key`, each record stamped
    (kinesis_latency.stamp) with its put's start. Returns (records put, records in the first put)."""
    per_put = max(1, rate // 10)
    started = time.monotonic()
    count = 0
    for tick in range(int(seconds * 10)):
        put_ms = time.time() * 1000.0
        entries = [
            {"Data": stamp(count + i, put_ms), "PartitionKey": "k", "ExplicitHashKey": hash_key}
            for i in range(per_put)
        ]
        client.put_records(StreamName=stream, Records=entries)
        count += per_put
        time.sleep(max(0.0, started + (tick + 1) / 10 - time.monotonic()))
    return count, per_put


def measure(endpoint: str, transport: str, args: argparse.Namespace, workdir: Path) -> Measurement:
    client = boto3.client("kinesis", endpoint_url=endpoint, **CREDENTIALS)
    name = f"idle-{transport}-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=args.shards)
    wait_stream_active(client, name, timeout=60)
    arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    first_shard = client.list_shards(StreamName=name, MaxResults=1)["Shards"][0]
    hash_key = first_shard["HashKeyRange"]["StartingHashKey"]
    os.environ[GET_RECORDS_CLIENT_ENV] = transport
    received = workdir / "received"
    received.mkdir()
    worker, worker_endpoint = start_worker(
        HANDLER, workdir, concurrency=2, env={LATENCY_DIR_ENV: str(received)}
    )
    metrics_port = free_port()
    config = {
        "Store": f"sqlite:///{(workdir / 'store.sqlite').resolve()}",
        "Metrics": {"Host": "127.0.0.1", "Port": metrics_port},
        "Functions": [{"FunctionName": FUNCTION_NAME, "Endpoints": [worker_endpoint], "Timeout": 30}],
        "EventSourceMappings": [
            {
                "FunctionName": FUNCTION_NAME,
                "EventSourceArn": arn,
                "StartingPosition": "LATEST",
                "BatchSize": 100,
                **(
                    {} if args.idle_interval is None else {"IdlePollingIntervalInSeconds": args.idle_interval}
                ),
            }
        ],
    }
    daemon = start_daemon(write_checked_config(workdir, config), workdir)
    try:
        deadline = time.monotonic() + OWN_TIMEOUT_S
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        while metric_sum(metrics_url, "esm_partitions_owned") < args.shards:
            if time.monotonic() > deadline or daemon.exit_code() is not None:
                raise RuntimeError(f"the daemon did not own {args.shards} shards:\n{daemon.log_tail()}")
            time.sleep(0.5)
        # The shards have been idle since they were taken: long enough for the back-off to be at its cap.
        idle_interval = (
            DEFAULT_IDLE_POLLING_INTERVAL_SECONDS if args.idle_interval is None else args.idle_interval
        )
        time.sleep(max(SETTLE_S, idle_interval / QUIET_FRACTION))
        profiler = _start_profiler(daemon.pid, args, transport)
        reads_before = metric_sum(metrics_url, "esm_shard_reads_total")
        idle = cpu_over(daemon.pid, args.seconds)
        reads = metric_sum(metrics_url, "esm_shard_reads_total") - reads_before
        if profiler is not None:
            profiler.wait()
        before = cpu_seconds(daemon.pid)
        reads_before = metric_sum(metrics_url, "esm_shard_reads_total")
        started = time.monotonic()
        count, first_put = put_steadily(client, name, args.rate, args.seconds, hash_key)
        # Longer than --seconds when the emulator slows the puts down.
        busy_seconds = time.monotonic() - started
        busy = cpu_seconds(daemon.pid) - before
        busy_reads = metric_sum(metrics_url, "esm_shard_reads_total") - reads_before
        deadline = time.monotonic() + DRAIN_S
        while len(read_latencies(received).latencies_ms) < count and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
        worker.stop()
        client.delete_stream(StreamName=name)
    latencies = _latencies_by_id(received)
    if len(latencies) < count:
        raise RuntimeError(
            f"only {len(latencies)} of {count} records reached the handler:\n{daemon.log_tail()}"
        )
    idle_per_s = idle / args.seconds
    every = list(latencies.values())
    return Measurement(
        transport=transport,
        idle_core_percent=100 * idle_per_s,
        idle_ms_per_shard_second=1000 * idle_per_s / args.shards,
        idle_reads_per_shard_second=reads / args.seconds / args.shards,
        idle_us_per_read=1e6 * idle / reads if reads else float("nan"),
        busy_extra_ms_per_second=1000 * (busy / busy_seconds - idle_per_s),
        busy_p50_ms=percentile(every, 50),
        busy_p99_ms=percentile(every, 99),
        first_after_idle_ms=max(latencies[i] for i in range(first_put)),
        busy_p99_after_1s_ms=percentile([v for i, v in latencies.items() if i >= 10 * first_put], 99),
        busy_reads_per_second=busy_reads / busy_seconds,
    )


def _latencies_by_id(received: Path) -> dict[int, float]:
    """Record id -> latency (ms), the first delivery of each."""
    found: dict[int, float] = {}
    for path in sorted(received.glob("latency-*.txt")):
        for line in path.read_text().split("\n")[:-1]:
            record_id, latency = line.split()
            found.setdefault(int(record_id), float(latency))
    return found


def _start_profiler(pid: int, args: argparse.Namespace, transport: str) -> subprocess.Popen[bytes] | None:
    """py-spy (if asked for) samples the idle daemon into collapsed stacks, one file a transport."""
    if args.py_spy is None:
        return None
    args.py_spy.mkdir(parents=True, exist_ok=True)
    out = args.py_spy / f"idle-{transport}.collapsed"
    command = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(args.seconds)),
        "--format",
        "raw",
        "--gil",
        "--rate",
        "500",
    ]
    return subprocess.Popen([*command, "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0, help="each CPU measurement's length")
    parser.add_argument("--rate", type=int, default=100, help="records/s to the busy shard")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--idle-interval",
        type=float,
        default=None,
        help="the mapping's IdlePollingIntervalInSeconds (default: the engine's)",
    )
    parser.add_argument(
        "--transports",
        default=",".join(TRANSPORTS),
        help=f"a comma-separated subset of {','.join(TRANSPORTS)}",
    )
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="write py-spy profiles of the idle daemon here"
    )
    args = parser.parse_args(argv)
    transports = tuple(t.strip() for t in args.transports.split(",") if t.strip())
    if not transports or set(transports) - set(TRANSPORTS):
        parser.error(
            f"--transports: a comma-separated subset of {','.join(TRANSPORTS)}, got {args.transports!r}"
        )
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
        }
    )
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="esm-bench-idle-") as tmp:
        emulator = KinesisMock(Path(tmp) / "kinesis-mock.log", shard_limit=2 * args.shards + 10)
        emulator.start()
        os.environ["AWS_ENDPOINT_URL_KINESIS"] = emulator.endpoint
        try:
            for run in range(args.runs):
                order = transports if run % 2 == 0 else transports[::-1]
                for transport in order:
                    workdir = Path(tmp) / f"run{run}-{transport}"
                    workdir.mkdir()
                    _say(f"run {run}: {transport}, {args.shards} shards")
                    results.append(measure(emulator.endpoint, transport, args, workdir))
                    _say(f"  {results[-1]}")
        finally:
            emulator.stop()
    fields = (
        "idle_core_percent",
        "idle_ms_per_shard_second",
        "idle_reads_per_shard_second",
        "idle_us_per_read",
        "busy_extra_ms_per_second",
        "busy_p50_ms",
        "busy_p99_ms",
        "first_after_idle_ms",
        "busy_p99_after_1s_ms",
        "busy_reads_per_second",
    )
    medians = {
        transport: {
            field: statistics.median(getattr(m, field) for m in results if m.transport == transport)
            for field in fields
        }
        for transport in transports
    }
    print(f"{args.shards} shards, {args.runs} runs, medians:")
    print(
        f"{'transport':<10} {'idle % core':>12} {'ms/shard/s':>11} {'reads/shard/s':>14} "
        f"{'us/read':>8} {'busy shard +ms/s':>17} {'busy p50/p99 ms':>16} {'1st after idle':>15} "
        f"{'p99 after 1 s':>14} {'reads/s busy':>13}"
    )
    for transport, m in medians.items():
        print(
            f"{transport:<10} {m['idle_core_percent']:>12.1f} {m['idle_ms_per_shard_second']:>11.3f} "
            f"{m['idle_reads_per_shard_second']:>14.2f} {m['idle_us_per_read']:>8.0f} "
            f"{m['busy_extra_ms_per_second']:>17.1f} "
            f"{m['busy_p50_ms']:>7.0f}/{m['busy_p99_ms']:<8.0f} {m['first_after_idle_ms']:>15.0f} "
            f"{m['busy_p99_after_1s_ms']:>14.0f} "
            f"{m['busy_reads_per_second']:>13.0f}"
        )
    if len(medians) == len(TRANSPORTS):
        ratio = medians["lean"]["idle_us_per_read"] / medians["botocore"]["idle_us_per_read"]
        print(f"idle CPU per read, lean/botocore: {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": [asdict(m) for m in results], "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
