"""DynamoDB Streams end to end: real table writes on DynamoDB Local, `esm worker` + `esm run` as real
processes, the leases read back from the daemon's store.

What the function receives is compared with the stream itself (read directly with the streams
client): the same records, in the same order, in Lambda's event shape. DynamoDB Local has one
shard per stream and only ends it when the stream is disabled (docs/architecture.md); its ARNs carry
the region `ddblocal` and its sequence numbers leading zeros (lease checkpoints drop them).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from esm_processes import EsmProcess
from stream_services import DynamoDBLocal, create_table

from esm.ownership.leases import SHARD_END, Lease, lease_namespace, normalize_sequence
from esm.stores import open_store

from .harness import Worker, wait_until, write_config
from .stream_harness import emulator_env

RECORDER = "tests.handlers.recorder:handler"
POWERTOOLS = "tests.handlers.powertools_dynamodb:handler"
# Which images each StreamViewType carries (Keys always).
IMAGES_BY_VIEW = {
    "KEYS_ONLY": (),
    "NEW_IMAGE": ("NewImage",),
    "OLD_IMAGE": ("OldImage",),
    "NEW_AND_OLD_IMAGES": ("NewImage", "OldImage"),
}
# Lines an error loop would repeat in the daemon's stderr.
ERROR_LINE = re.compile(r"error|exception|traceback|failed", re.IGNORECASE)


def s(text: str) -> dict[str, str]:
    return {"S": text}


def n(number: int) -> dict[str, str]:
    return {"N": str(number)}


class Table:
    """A fresh table with a stream, written through the low-level client (DynamoDB JSON items)."""

    def __init__(self, emulator: DynamoDBLocal, view_type: str = "NEW_AND_OLD_IMAGES") -> None:
        # Typed Any in one step: mypy would narrow an attribute to `client()`'s declared `object`.
        dynamodb: Any = emulator.client()
        streams: Any = emulator.client("dynamodbstreams")
        self.dynamodb = dynamodb
        self.streams = streams
        described = create_table(self.dynamodb, view_type)
        self.name: str = described["TableName"]
        self.table_arn: str = described["TableArn"]
        self.stream_arn: str = described["LatestStreamArn"]

    def put(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=self.name, Item=item)

    def set_attribute(self, item_id: str, name: str, value: dict[str, Any]) -> None:
        self.dynamodb.update_item(
            TableName=self.name,
            Key={"id": s(item_id)},
            UpdateExpression="SET #a = :v",
            ExpressionAttributeNames={"#a": name},
            ExpressionAttributeValues={":v": value},
        )

    def delete(self, item_id: str) -> None:
        self.dynamodb.delete_item(TableName=self.name, Key={"id": s(item_id)})

    def disable_stream(self) -> None:
        self.dynamodb.update_table(TableName=self.name, StreamSpecification={"StreamEnabled": False})

    def shard_id(self) -> str:
        [shard] = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        return str(shard["ShardId"])

    def stream_records(self) -> list[dict[str, Any]]:
        """Every record of the stream's shard, read directly: what the engine should deliver."""
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id(), ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                break
            records += page["Records"]
            iterator = page.get("NextShardIterator")
        return records


@pytest.fixture
def new_table(dynamodb_local: DynamoDBLocal) -> Iterator[Callable[..., Table]]:
    """Call `new_table()` or `new_table(view_type)`; tables are deleted after the test."""
    made: list[Table] = []

    def make(view_type: str = "NEW_AND_OLD_IMAGES") -> Table:
        made.append(Table(dynamodb_local, view_type))
        return made[-1]

    yield make
    for table in made:
        table.dynamodb.delete_table(TableName=table.name)


@pytest.fixture
def aws_env(dynamodb_local: DynamoDBLocal) -> dict[str, str]:
    """The daemon's environment: the emulator's endpoints and dummy credentials, nothing esm-specific."""
    return emulator_env(dynamodb=dynamodb_local)


def stream_mapping(mapping_id: str, source_arn: str, **overrides: Any) -> dict[str, Any]:
    return {
        "UUID": mapping_id,
        "FunctionName": "fn",
        "EventSourceArn": source_arn,
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 1,
        "TumblingWindowInSeconds": 0,
        **overrides,
    }


@contextmanager
def running_engine(
    tmp_path: Path,
    env: dict[str, str],
    mappings: list[dict[str, Any]],
    store_url: str,
    handler: str = RECORDER,
    **top_level: Any,
) -> Iterator[EsmProcess]:
    """A worker running `handler` (appending to tmp_path/events.jsonl) and a daemon for `mappings`.

    On leaving without an error, the daemon must stop cleanly (exit code 0).
    """
    worker = Worker(handler, env={"ESM_RECORDER_FILE": str(tmp_path / "events.jsonl")})
    try:
        worker.wait_serving()
        config = write_config(
            tmp_path / "esm.json",
            [{"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30}],
            mappings,
            store=store_url,
            **top_level,
        )
        daemon = EsmProcess(["run", "-c", str(config), "--processes", "1"], env=env)
        try:
            yield daemon
        finally:
            code = daemon.stop()
    finally:
        worker.stop()
    assert code == 0, f"daemon exit code {code}; stderr:\n{daemon.stderr}"


def delivered(tmp_path: Path) -> list[dict[str, Any]]:
    """Every record the recorder handler was invoked with, in invocation order."""
    events = tmp_path / "events.jsonl"
    if not events.exists():
        return []
    return [record for line in events.read_text().splitlines() for record in json.loads(line)["Records"]]


def seen_by_powertools(tmp_path: Path) -> list[dict[str, Any]]:
    events = tmp_path / "events.jsonl"
    return [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []


def leases(store_url: str, mapping_id: str, stream_arn: str) -> list[Lease]:
    async def read() -> list[Lease]:
        store = open_store(store_url)
        try:
            return await store.leases.list(lease_namespace(mapping_id, stream_arn))
        finally:
            await store.close()

    return asyncio.run(read())


def wait_checkpoint(
    store_url: str, mapping_id: str, stream_arn: str, checkpoint: str, daemon: EsmProcess
) -> Lease:
    """Waits until the stream's only lease has `checkpoint` (a sequence number or SHARD_END)."""
    expected = normalize_sequence(stream_arn, "-", checkpoint)
    found: list[Lease] = []

    def reached() -> bool:
        running(daemon)
        found[:] = leases(store_url, mapping_id, stream_arn)
        return len(found) == 1 and found[0].checkpoint == expected

    wait_until(
        reached,
        timeout=30,
        interval=0.25,
        message=lambda: f"checkpoint {expected}, leases {found}; daemon stderr:\n{daemon.stderr}",
    )
    return found[0]


def running(daemon: EsmProcess) -> bool:
    """True while the daemon runs; an exited daemon fails the wait at once instead of at its timeout."""
    if daemon.process.poll() is not None:
        raise AssertionError(f"daemon exited with {daemon.process.returncode}; stderr:\n{daemon.stderr}")
    return True


def wait_delivered(tmp_path: Path, count: int, daemon: EsmProcess) -> None:
    wait_until(
        lambda: running(daemon) and len(delivered(tmp_path)) >= count,
        timeout=30,
        message=lambda: (
            f"{count} records delivered, have {len(delivered(tmp_path))}; stderr:\n{daemon.stderr}"
        ),
    )


def as_lambda_delivers(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record from `get_records` in Lambda's event shape."""
    stream_record = record["dynamodb"]
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ddblocal",
        "dynamodb": {
            # Epoch seconds in the event, a datetime from boto3 (equal as numbers when whole).
            "ApproximateCreationDateTime": stream_record["ApproximateCreationDateTime"].timestamp(),
            **{
                name: stream_record[name]
                for name in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType")
                if name in stream_record
            },
        },
        "eventSourceARN": stream_arn,
    }


def write_insert_modify_remove(
    table: Table,
) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Four writes; returns what each stream record holds: (eventName, Keys, NewImage, OldImage)."""
    a1 = {"id": s("a"), "n": n(1), "profile": {"M": {"name": s("Ann"), "tags": {"SS": ["x", "y"]}}}}
    b1 = {"id": s("b"), "n": n(5), "active": {"BOOL": True}, "list": {"L": [n(1), s("two")]}}
    table.put(a1)
    table.put(b1)
    table.set_attribute("a", "n", n(2))
    table.delete("b")
    a2 = {**a1, "n": n(2)}
    return [
        ("INSERT", {"id": s("a")}, a1, {}),
        ("INSERT", {"id": s("b")}, b1, {}),
        ("MODIFY", {"id": s("a")}, a2, a1),
        ("REMOVE", {"id": s("b")}, {}, b1),
    ]


@pytest.mark.parametrize("view_type", list(IMAGES_BY_VIEW))
def test_insert_modify_remove_arrive_in_order_in_lambdas_shape(
    new_table: Callable[..., Table],
    aws_env: dict[str, str],
    sqlite_store_url: str,
    tmp_path: Path,
    view_type: str,
) -> None:
    table = new_table(view_type)
    writes = write_insert_modify_remove(table)
    truth = table.stream_records()
    assert len(truth) == len(writes)
    mapping_id = "3f1f0f5e-0d3a-4c55-9a61-6f2b5d1c0a01"

    with running_engine(
        tmp_path, aws_env, [stream_mapping(mapping_id, table.stream_arn)], sqlite_store_url
    ) as daemon:
        wait_delivered(tmp_path, len(truth), daemon)
        lease = wait_checkpoint(
            sqlite_store_url, mapping_id, table.stream_arn, truth[-1]["dynamodb"]["SequenceNumber"], daemon
        )

    records = delivered(tmp_path)
    assert records == [as_lambda_delivers(r, table.stream_arn) for r in truth]  # no gap, no duplicate
    images = IMAGES_BY_VIEW[view_type]
    for record, (event_name, keys, new_image, old_image) in zip(records, writes, strict=True):
        stream_record = record["dynamodb"]
        assert record["eventName"] == event_name
        assert stream_record["Keys"] == keys
        assert stream_record.get("NewImage") == (new_image if "NewImage" in images and new_image else None)
        assert stream_record.get("OldImage") == (old_image if "OldImage" in images and old_image else None)
        assert stream_record["StreamViewType"] == view_type
        assert isinstance(stream_record["ApproximateCreationDateTime"], int | float)
        assert record["eventSourceARN"] == table.stream_arn
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence_numbers == sorted(set(sequence_numbers))
    assert lease.shard_id == table.shard_id()


def test_table_arn_resolves_to_the_tables_stream(
    new_table: Callable[..., Table], aws_env: dict[str, str], sqlite_store_url: str, tmp_path: Path
) -> None:
    table = new_table()
    write_insert_modify_remove(table)
    truth = table.stream_records()
    assert table.table_arn.endswith(f":table/{table.name}")

    with running_engine(
        tmp_path,
        aws_env,
        [stream_mapping("3f1f0f5e-0d3a-4c55-9a61-6f2b5d1c0a02", table.table_arn)],
        sqlite_store_url,
    ) as daemon:
        wait_delivered(tmp_path, len(truth), daemon)

    # Delivered as from the stream itself: eventSourceARN is the stream's ARN, not the table's.
    assert delivered(tmp_path) == [as_lambda_delivers(r, table.stream_arn) for r in truth]


def test_disabled_stream_ends_the_shard_cleanly(
    new_table: Callable[..., Table], aws_env: dict[str, str], sqlite_store_url: str, tmp_path: Path
) -> None:
    table = new_table()
    for i in range(25):
        table.put({"id": s(f"k{i}"), "n": n(i)})
    mapping_id = "3f1f0f5e-0d3a-4c55-9a61-6f2b5d1c0a03"
    discovery_seconds = 1.0  # the smallest allowed

    with running_engine(
        tmp_path,
        aws_env,
        [stream_mapping(mapping_id, table.stream_arn, BatchSize=10)],
        sqlite_store_url,
        ShardDiscoveryIntervalSeconds=discovery_seconds,
    ) as daemon:
        wait_delivered(tmp_path, 25, daemon)
        for i in range(25, 30):
            table.put({"id": s(f"k{i}"), "n": n(i)})
        table.disable_stream()  # the shard closes after its last records

        lease = wait_checkpoint(sqlite_store_url, mapping_id, table.stream_arn, SHARD_END, daemon)
        quiet_from = len(daemon.stderr.splitlines())
        # Nothing to wait for here: an error loop shows only as lines repeating over time, so the
        # daemon is watched for several polling and discovery rounds after the shard ended.
        watch_until = time.monotonic() + 3 * discovery_seconds
        while time.monotonic() < watch_until:
            assert daemon.process.poll() is None, f"daemon exited after shard end:\n{daemon.stderr}"
            time.sleep(0.25)
        after_end = daemon.stderr.splitlines()[quiet_from:]

    assert [line for line in after_end if ERROR_LINE.search(line)] == [], "\n".join(after_end)
    assert "Traceback" not in daemon.stderr, daemon.stderr
    assert lease.shard_id == table.shard_id()
    truth = table.stream_records()
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in truth] == [f"k{i}" for i in range(30)]
    assert delivered(tmp_path) == [as_lambda_delivers(r, table.stream_arn) for r in truth]


def test_powertools_dynamodb_handler_runs_unmodified(
    new_table: Callable[..., Table], aws_env: dict[str, str], sqlite_store_url: str, tmp_path: Path
) -> None:
    table = new_table()
    blob = bytes([0, 1, 2, 250])
    table.put({"id": s("p"), "price": n(10), "ratio": {"N": "0.5"}, "blob": {"B": blob}})
    table.set_attribute("p", "price", n(12))
    table.delete("p")
    truth = table.stream_records()
    mapping_id = "3f1f0f5e-0d3a-4c55-9a61-6f2b5d1c0a04"

    with running_engine(
        tmp_path,
        aws_env,
        [stream_mapping(mapping_id, table.stream_arn, FunctionResponseTypes=["ReportBatchItemFailures"])],
        sqlite_store_url,
        handler=POWERTOOLS,
    ) as daemon:
        wait_until(
            lambda: running(daemon) and len(seen_by_powertools(tmp_path)) >= 3,
            timeout=30,
            message=lambda: f"3 records seen by Powertools; stderr:\n{daemon.stderr}",
        )
        wait_checkpoint(
            sqlite_store_url, mapping_id, table.stream_arn, truth[-1]["dynamodb"]["SequenceNumber"], daemon
        )

    seen = seen_by_powertools(tmp_path)
    # Binary values reach the function as base64 text, which Powertools leaves as it is.
    image = {"id": "p", "price": 10, "ratio": 0.5, "blob": "AAEC+g=="}
    assert [(r["event_name"], r["keys"], r["new_image"], r["old_image"]) for r in seen] == [
        ("INSERT", {"id": "p"}, image, {}),
        ("MODIFY", {"id": "p"}, {**image, "price": 12}, image),
        ("REMOVE", {"id": "p"}, {}, {**image, "price": 12}),
    ]
    assert [r["sequence_number"] for r in seen] == [r["dynamodb"]["SequenceNumber"] for r in truth]
    assert [r["event_id"] for r in seen] == [r["eventID"] for r in truth]
    assert {r["stream_view_type"] for r in seen} == {"NEW_AND_OLD_IMAGES"}
    assert {r["event_source_arn"] for r in seen} == {table.stream_arn}
    assert {r["event_source"] for r in seen} == {"aws:dynamodb"}
    assert {r["aws_region"] for r in seen} == {"ddblocal"}
    assert [r["size_bytes"] for r in seen] == [r["dynamodb"]["SizeBytes"] for r in truth]
    assert [r["approximate_creation_date_time"] for r in seen] == [
        int(r["dynamodb"]["ApproximateCreationDateTime"].timestamp()) for r in truth
    ]


def test_filter_criteria_deliver_only_matching_records_and_checkpoint_past_the_rest(
    new_table: Callable[..., Table], aws_env: dict[str, str], sqlite_store_url: str, tmp_path: Path
) -> None:
    table = new_table()
    table.put({"id": s("k1"), "kind": s("keep")})
    table.put({"id": s("d1"), "kind": s("drop")})
    table.set_attribute("k1", "note", s("modified"))  # MODIFY: filtered out by eventName
    table.put({"id": s("k2"), "kind": s("keep")})
    table.delete("d1")
    table.put({"id": s("d2"), "kind": s("drop")})  # the last record is a filtered one
    truth = table.stream_records()
    mapping_id = "3f1f0f5e-0d3a-4c55-9a61-6f2b5d1c0a05"
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}

    with running_engine(
        tmp_path,
        aws_env,
        [
            stream_mapping(
                mapping_id, table.stream_arn, FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]}
            )
        ],
        sqlite_store_url,
    ) as daemon:
        wait_checkpoint(
            sqlite_store_url, mapping_id, table.stream_arn, truth[-1]["dynamodb"]["SequenceNumber"], daemon
        )

    kept = [r for r in truth if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"]["kind"] == s("keep")]
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in kept] == ["k1", "k2"]
    assert delivered(tmp_path) == [as_lambda_delivers(r, table.stream_arn) for r in kept]
