"""Shared helpers for the stream (Kinesis) integration tests: the emulator environment for `esm run`,
streams created and waited ACTIVE, a producer that remembers what it put, the Kinesis records the
recorder handler was invoked with, and reads of a mapping's lease table.

Ordering checks rest on one rule of the producer: a `put_records` call carries at most one record
per partition key, and a call is finished (failed entries retried) before the next one starts. So
each key's records enter the stream strictly one after another, and "put order" per key is exact
even across resharding, without comparing sequence numbers of different shards.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
from esm_processes import EsmProcess
from stream_services import CREDENTIALS, DynamoDBLocal, KinesisMock, wait_stream_active

from esm.mappings.streams import lease_namespace
from esm.ownership.leases import Lease
from esm.stores import open_store

from .harness import Worker, complete_lines

# Errors a put may meet while the stream reshards or the emulator is busy: the same put is retried.
_RETRYABLE_PUT_ERRORS = frozenset(
    {"ResourceInUseException", "ProvisionedThroughputExceededException", "LimitExceededException"}
)
_PUT_ATTEMPTS = 50
_PUT_RETRY_SECONDS = 0.05


def emulator_env(kinesis: KinesisMock | None = None, dynamodb: DynamoDBLocal | None = None) -> dict[str, str]:
    """The environment that points boto3 (in `esm run` and in tests) at the emulators."""
    env = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
    }
    if kinesis is not None:
        env["AWS_ENDPOINT_URL_KINESIS"] = kinesis.endpoint
    if dynamodb is not None:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb.endpoint
        env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = dynamodb.endpoint
    return env


# -- streams ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KinesisStream:
    client: Any  # boto3 Kinesis client (thread-safe for calls)
    name: str
    arn: str

    def status(self) -> str:
        summary = self.client.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]
        return str(summary["StreamStatus"])

    def wait_active(self, timeout: float = 30.0) -> KinesisStream:
        wait_stream_active(self.client, self.name, timeout)
        return self

    def shards(self) -> list[dict[str, Any]]:
        """Every shard, open and closed, by ListShards (paged)."""
        page = self.client.list_shards(StreamName=self.name)
        shards: list[dict[str, Any]] = list(page["Shards"])
        while token := page.get("NextToken"):
            page = self.client.list_shards(NextToken=token)
            shards += page["Shards"]
        return shards

    def shard_ids(self) -> list[str]:
        return [s["ShardId"] for s in self.shards()]

    def parent_shard_ids(self) -> set[str]:
        """Shards that have children: closed by a split, merge or UpdateShardCount."""
        parents: set[str] = set()
        for shard in self.shards():
            parents.update(p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
        return parents

    def open_shards(self) -> list[dict[str, Any]]:
        """Shards without children, in hash-key order (the ones that take writes)."""
        parents = self.parent_shard_ids()
        open_ = [s for s in self.shards() if s["ShardId"] not in parents]
        return sorted(open_, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))

    # Resharding: each waits until the stream is ACTIVE again.

    def split(self, shard: dict[str, Any]) -> None:
        low = int(shard["HashKeyRange"]["StartingHashKey"])
        high = int(shard["HashKeyRange"]["EndingHashKey"])
        self.client.split_shard(
            StreamName=self.name, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2 + 1)
        )
        self.wait_active()

    def merge(self, lower: dict[str, Any], upper: dict[str, Any]) -> None:
        """Merges two open shards; `upper`'s hash-key range must start right after `lower`'s."""
        if int(lower["HashKeyRange"]["EndingHashKey"]) + 1 != int(upper["HashKeyRange"]["StartingHashKey"]):
            raise AssertionError(f"{lower['ShardId']} and {upper['ShardId']} are not adjacent")
        self.client.merge_shards(
            StreamName=self.name, ShardToMerge=lower["ShardId"], AdjacentShardToMerge=upper["ShardId"]
        )
        self.wait_active()

    def update_shard_count(self, target: int) -> None:
        self.client.update_shard_count(
            StreamName=self.name, TargetShardCount=target, ScalingType="UNIFORM_SCALING"
        )
        self.wait_active()


def read_shard(stream: KinesisStream, shard_id: str) -> list[dict[str, Any]]:
    """Every record of a shard as boto3's get_records returns them, from TRIM_HORIZON to now."""
    iterator = stream.client.get_shard_iterator(
        StreamName=stream.name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = stream.client.get_records(ShardIterator=iterator, Limit=10_000)
        records += page["Records"]
        if not page["Records"] and not page.get("MillisBehindLatest"):
            break  # caught up on an open shard
        iterator = page.get("NextShardIterator")
    return records


def create_kinesis_stream(kinesis: KinesisMock, shard_count: int) -> KinesisStream:
    """A fresh stream with a unique name, ACTIVE; its ARN from describe_stream_summary."""
    client: Any = kinesis.client()
    name = f"s-{uuid.uuid4().hex[:12]}"
    client.create_stream(StreamName=name, ShardCount=shard_count)
    arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    return KinesisStream(client, name, str(arn)).wait_active()


# -- producing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Put:
    partition_key: str
    data: bytes
    shard_id: str
    sequence_number: str


def put_records(stream: KinesisStream, entries: Sequence[tuple[str, bytes]]) -> list[Put]:
    """Puts (partition key, data) entries in one PutRecords call, retrying failed entries until
    all are in; returns them in `entries` order with where they landed."""
    landed: list[Put | None] = [None] * len(entries)
    pending = list(range(len(entries)))
    for _ in range(_PUT_ATTEMPTS):
        try:
            response = stream.client.put_records(
                StreamName=stream.name,
                Records=[{"PartitionKey": entries[i][0], "Data": entries[i][1]} for i in pending],
            )
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _RETRYABLE_PUT_ERRORS:
                raise
            time.sleep(_PUT_RETRY_SECONDS)
            continue
        failed = []
        for index, result in zip(pending, response["Records"], strict=True):
            if "SequenceNumber" in result:
                key, data = entries[index]
                landed[index] = Put(key, data, result["ShardId"], result["SequenceNumber"])
            else:
                failed.append(index)
        if not failed:
            return [put for put in landed if put is not None]
        pending = failed
        time.sleep(_PUT_RETRY_SECONDS)
    raise AssertionError(f"{len(pending)} records of {stream.name} not accepted after {_PUT_ATTEMPTS} tries")


class KeyedProducer:
    """Puts records `<key>:<n>` in rounds of one record per key, each key's n counting up from 0.

    `put_rounds` runs on the caller's thread; `start`/`stop` run rounds on a background thread
    (for resharding under load). `puts` is everything put so far, in put order.
    """

    def __init__(self, stream: KinesisStream, keys: Sequence[str]) -> None:
        self.stream = stream
        self.keys = list(keys)
        self._counters = dict.fromkeys(self.keys, 0)
        self._puts: list[Put] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def puts(self) -> list[Put]:
        with self._lock:
            return list(self._puts)

    def put_round(self) -> list[Put]:
        entries = []
        for key in self.keys:
            entries.append((key, f"{key}:{self._counters[key]}".encode()))
            self._counters[key] += 1
        landed = put_records(self.stream, entries)
        with self._lock:
            self._puts += landed
        return landed

    def put_rounds(self, rounds: int) -> list[Put]:
        return [put for _ in range(rounds) for put in self.put_round()]

    def start(self, interval: float = 0.02) -> KeyedProducer:
        def run() -> None:
            try:
                while not self._stop.is_set():
                    self.put_round()
                    self._stop.wait(interval)
            except BaseException as error:  # reported by stop(), on the test's thread
                self._error = error

        self._thread = threading.Thread(target=run, name="keyed-producer", daemon=True)
        self._thread.start()
        return self

    def stop(self, check: bool = True) -> list[Put]:
        """Stops the background rounds; with `check`, raises what failed them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if check and self._error is not None:
            raise AssertionError(f"the producer failed: {self._error!r}") from self._error
        return self.puts


def keys(count: int) -> list[str]:
    return [f"k{i:03d}" for i in range(count)]


def data_by_key(records: Iterable[Put | DeliveredRecord]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for record in records:
        out[record.partition_key].append(record.data)
    return dict(out)


# -- what the handler saw -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveredRecord:
    shard_id: str
    partition_key: str
    sequence_number: str
    data: bytes
    # The recorder file's line: invocations are appended in the order they ran.
    invocation: int


def delivered_records(path: Path) -> list[DeliveredRecord]:
    """Every Kinesis record in the recorder file, in invocation order (duplicates kept)."""
    out = []
    for line_number, line in enumerate(complete_lines(path)):
        event = json.loads(line)
        for record in event["Records"]:
            shard_id, _, sequence_number = record["eventID"].rpartition(":")
            kinesis = record["kinesis"]
            if kinesis["sequenceNumber"] != sequence_number:
                raise AssertionError(f"line {line_number}: eventID {record['eventID']} names another record")
            out.append(
                DeliveredRecord(
                    shard_id=shard_id,
                    partition_key=kinesis["partitionKey"],
                    sequence_number=sequence_number,
                    data=base64.b64decode(kinesis["data"]),
                    invocation=line_number,
                )
            )
    return out


def first_deliveries(records: Iterable[DeliveredRecord]) -> list[DeliveredRecord]:
    """Each record once, at its first delivery; later ones are re-deliveries."""
    seen: set[tuple[str, str]] = set()
    out = []
    for record in records:
        if (record.shard_id, record.sequence_number) not in seen:
            seen.add((record.shard_id, record.sequence_number))
            out.append(record)
    return out


def redelivered_count(records: Sequence[DeliveredRecord]) -> int:
    """How many deliveries were of a record already delivered."""
    return len(records) - len(first_deliveries(records))


# -- the engine ---------------------------------------------------------------------------------


def function(worker: Worker, **extra: Any) -> dict[str, Any]:
    return {"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30, **extra}


def kinesis_mapping(stream: KinesisStream, mapping_id: str, **overrides: Any) -> dict[str, Any]:
    """A mapping entry with AWS's defaults, polling idle shards every 0.1 s."""
    entry: dict[str, Any] = {
        "UUID": mapping_id,
        "FunctionName": "fn",
        "EventSourceArn": stream.arn,
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 1,
        "TumblingWindowInSeconds": 0,
        "PollingIntervalInSeconds": 0.1,
    }
    entry.update(overrides)
    return entry


def stream_daemon(config: Path, env: dict[str, str], processes: int = 1) -> EsmProcess:
    return EsmProcess(["run", "-c", str(config), "--processes", str(processes)], env=env)


# -- leases -------------------------------------------------------------------------------------


def read_leases(store_url: str, mapping_id: str, stream_arn: str) -> dict[str, Lease]:
    """The mapping's lease table, by shard id."""

    async def read() -> list[Lease]:
        store = open_store(store_url)
        try:
            return await store.leases.list(lease_namespace(mapping_id, stream_arn))
        finally:
            await store.close()

    return {lease.shard_id: lease for lease in asyncio.run(read())}


def write_checkpoint(
    store_url: str, mapping_id: str, stream_arn: str, lease: Lease, owner: str, token: int, sequence: str
) -> bool:
    """A fenced checkpoint write as `owner` with `token` (what a stale poller would attempt)."""

    async def write() -> bool:
        store = open_store(store_url)
        try:
            return await store.leases.checkpoint(
                lease_namespace(mapping_id, stream_arn), lease.shard_id, owner, token, sequence, time.time()
            )
        finally:
            await store.close()

    return asyncio.run(write())
