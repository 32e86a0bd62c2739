"""`esm status` for stream mappings: the JSON and the table, from leases and reports written into a
real SQLite store (and a table ARN resolved on DynamoDB Local)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from esm.ownership.leases import SHARD_END, Lease, lease_namespace
from esm.status.command import abbreviate_sequence, millis_text, partition_row, render, status_command
from esm.status.kafka_positions import PartitionPosition
from esm.status.stream_leases import shard_row
from esm.stores import open_store

from .conftest import Tables

KINESIS_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
MAPPING_ID = "6f1c2a7e-0b8e-4d6a-9a51-3c2f1d0e9b77"
SEQUENCE = "49590338271490256608559692538361571095921575989136588802"
OWNER = "ip-10-0-12-34.ec2:123456"  # 24 characters: a long host name


def write_config(tmp_path: Path, store_url: str, *mappings: tuple[str, str]) -> Path:
    """A config with one mapping per (UUID, EventSourceArn)."""
    path = tmp_path / "esm.json"
    config = {
        "Store": store_url,
        "Functions": [{"FunctionName": "fn", "Endpoints": ["127.0.0.1:9"]}],
        "EventSourceMappings": [
            {"UUID": uuid, "FunctionName": "fn", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON"}
            for uuid, arn in mappings
        ],
    }
    path.write_text(json.dumps(config))
    return path


def write_leases(store_url: str, stream_arn: str, mapping_id: str = MAPPING_ID) -> None:
    asyncio.run(_write_leases(store_url, stream_arn, mapping_id))


async def _write_leases(store_url: str, stream_arn: str, mapping_id: str) -> None:
    """Shard 0 held by OWNER with a live report; 1 finished, its owner gone; 2 and 3 children of
    0 and 1 that nobody took yet."""
    namespace, now = lease_namespace(mapping_id, stream_arn), time.time()
    store = open_store(store_url)
    try:
        for shard, parents in [("shardId-000000000000", ()), ("shardId-000000000001", ())] + [
            (f"shardId-00000000000{i}", ("shardId-000000000000", "shardId-000000000001")) for i in (2, 3)
        ]:
            await store.leases.ensure(namespace, shard, parents)
        live = await store.leases.take(namespace, "shardId-000000000000", OWNER, 0, 60.0, now)
        gone = await store.leases.take(namespace, "shardId-000000000001", "old:7", 0, 10.0, now - 30)
        assert live is not None and gone is not None
        assert await store.leases.checkpoint(namespace, live.shard_id, OWNER, live.token, SEQUENCE, now)
        assert await store.leases.checkpoint(
            namespace, gone.shard_id, "old:7", gone.token, SHARD_END, now - 30
        )
        await store.status.publish(
            mapping_id,
            {
                live.shard_id: {
                    "owner": OWNER,
                    "state": "PROCESSING",
                    "checkpoint": SEQUENCE,
                    "lanes": 1,
                    "buffered": 0,
                    "in_flight": [{"first": SEQUENCE, "last": SEQUENCE, "records": 1}],
                    "millis_behind_latest": 65_000,
                    "data_lost_at": 1_700_000_000.0,
                    "last_error": None,
                    "last_processing_result": "OK",
                }
            },
            60.0,
            now,
        )
    finally:
        await store.close()


def run_status(config: Path, as_json: bool, capsys: pytest.CaptureFixture[str]) -> str:
    assert status_command(str(config), as_json=as_json) == 0
    out: str = capsys.readouterr().out
    return out


def test_json_lists_each_shard_with_its_lease_and_the_owners_report(
    tmp_path: Path, sqlite_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_leases(sqlite_store_url, KINESIS_ARN)
    config = write_config(tmp_path, sqlite_store_url, (MAPPING_ID, KINESIS_ARN))

    [mapping] = json.loads(run_status(config, True, capsys))

    assert "partitions" not in mapping and "error" not in mapping
    assert (mapping["uuid"], mapping["function"], mapping["state"]) == (MAPPING_ID, "fn", "Enabled")
    assert mapping["stream"] == mapping["event_source_arn"] == KINESIS_ARN
    live, ended, *children = mapping["shards"]
    assert (live["owner"], live["lease"], live["checkpoint"], live["state"]) == (
        OWNER,
        "held",
        SEQUENCE,  # whole in JSON
        "PROCESSING",
    )
    assert 55 < live["lease_expires_in_seconds"] <= 60
    assert live["in_flight"] == [{"first": SEQUENCE, "last": SEQUENCE, "records": 1}]
    assert (live["millis_behind_latest"], live["data_lost_at"]) == (65_000, 1_700_000_000.0)
    assert (ended["owner"], ended["lease"], ended["checkpoint"], ended["state"]) == (
        None,
        "expired",
        SHARD_END,
        None,
    )
    assert [(c["shard_id"], c["lease"], c["checkpoint"]) for c in children] == [
        ("shardId-000000000002", "free", None),
        ("shardId-000000000003", "free", None),
    ]
    assert children[0]["parents"] == ["shardId-000000000000", "shardId-000000000001"]


def test_table_abbreviates_sequences_and_fits_120_columns(
    tmp_path: Path, sqlite_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_leases(sqlite_store_url, KINESIS_ARN)
    config = write_config(tmp_path, sqlite_store_url, (MAPPING_ID, KINESIS_ARN))

    lines = run_status(config, False, capsys).splitlines()

    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    assert lines[:3] == [
        f"mapping {MAPPING_ID}  function fn  Enabled",
        f"  stream {KINESIS_ARN}",
        "  shard                 owner                       lease  checkpoint       state       in flight"
        "  behind  result",
    ]
    live = lines[3].split()
    assert live[:4] == ["shardId-000000000000", OWNER, live[2], "..." + SEQUENCE[-12:]]
    assert live[4:] == ["PROCESSING", "1", "1.1m", "OK"]
    assert (
        lines[4]
        == "    ! DATA LOST at 2023-11-14T22:13:20Z: records expired (stream retention) before they were read"
    )
    assert lines[5].split() == ["shardId-000000000001", "-", "expired", SHARD_END, "-", "-", "-", "-"]
    assert lines[6].split()[:4] == ["shardId-000000000002", "-", "free", "-"]
    assert lines[7] == "    parents: shardId-000000000000, shardId-000000000001"
    assert SEQUENCE not in "\n".join(lines)


def stream_mapping(*shards: dict[str, Any]) -> dict[str, Any]:
    return {
        "uuid": MAPPING_ID,
        "function": "fn",
        "state": "Enabled",
        "event_source_arn": "arn:aws:dynamodb:us-east-1:000000000000:table/t",
        "stream": "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2024-01-01T00:00:00.000",
        "shards": list(shards),
    }


FAILING = {
    "owner": OWNER,
    "in_flight": [{"records": 100}],
    "last_processing_result": "PROBLEM: Function call failed",
}


def test_a_result_that_would_pass_120_columns_goes_under_its_shard() -> None:
    now = 100.0
    failing = shard_row(
        Lease("ns", "shardId-000000000000", OWNER, now + 5, 1, SEQUENCE),
        {**FAILING, "state": "PROCESSING"},
        now,
    )
    free = shard_row(Lease("ns", "shardId-000000000001", None, 0.0, 0, None), {}, now)

    lines = render([stream_mapping(failing, free)]).splitlines()

    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    assert lines[1:3] == [
        "  table  arn:aws:dynamodb:us-east-1:000000000000:table/t",
        "  stream arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2024-01-01T00:00:00.000",
    ]
    assert lines[3].split()[-1] == "result"
    assert lines[4].split()[-3:] == ["PROCESSING", "100", "-"]
    assert lines[5] == "    result: PROBLEM: Function call failed"
    assert lines[6].split() == ["shardId-000000000001", "-", "free", "-", "-", "-", "-", "-"]


def test_rows_too_wide_for_the_table_keep_their_last_columns_under_the_shard() -> None:
    now = 100.0
    dynamodb_shard = "shardId-00000001700000000000-0123abcd"
    waiting = shard_row(
        Lease("ns", dynamodb_shard, OWNER, now + 5, 1, None), {**FAILING, "state": "WAITING_ON_PARENTS"}, now
    )
    free = shard_row(Lease("ns", "shardId-00000001700000000001-4567ef01", None, 0.0, 0, None), {}, now)

    lines = render([stream_mapping(waiting, free)]).splitlines()

    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    assert lines[3].split() == ["shard", "owner", "lease", "checkpoint", "state"]
    assert lines[4].split() == [dynamodb_shard, OWNER, "5.0s", "-", "WAITING_ON_PARENTS"]
    assert lines[5] == "    in flight: 100, result: PROBLEM: Function call failed"
    assert lines[6].split() == ["shardId-00000001700000000001-4567ef01", "-", "free", "-", "-"]
    assert len(lines) == 7  # nothing under a shard without an owner's report


def test_kafka_mappings_keep_their_partition_table() -> None:
    mapping = {
        "uuid": "u",
        "function": "fn",
        "state": "Enabled",
        "partitions": [
            {
                "partition": 0,
                "owner": "h:1",
                "shard_state": "PROCESSING",
                "committed": 10,
                "end": 30,
                "lag": 20,
                "in_flight": [{"first": 10, "last": 14, "records": 5}],
                "retries": 2,
                "last_processing_result": "PROBLEM: Function call failed",
                "last_error": "boom",
            }
        ],
        "topic": "t",
        "consumer_group": "g",
    }
    assert render([mapping]).splitlines() == [
        "mapping u  function fn  Enabled  topic t  group g",
        "  part  owner                     committed        end      lag  in flight        retry  result",
        "     0  h:1                              10         30       20  10-14                2  "
        "PROBLEM: Function call failed",
        "        last error: boom",
    ]


@pytest.mark.parametrize(
    ("in_flight", "shown"),
    [
        (None, "-"),
        ([], "-"),
        ([{"first": 10, "last": 14, "records": 5}], "10-14"),
        # ParallelizationFactor: the lowest batch in flight, and how many other lanes have one
        ([{"first": 17, "last": 30, "records": 3}, {"first": 12, "last": 19, "records": 2}], "12-19 +1"),
    ],
)
def test_kafka_batches_in_flight(in_flight: object, shown: str) -> None:
    mapping = {
        "uuid": "u",
        "function": "fn",
        "state": "Enabled",
        "partitions": [
            {
                "partition": 0,
                "owner": "h:1",
                "committed": 10,
                "end": 30,
                "lag": 20,
                "in_flight": in_flight,
                "retries": 0,
                "last_processing_result": "OK",
                "last_error": None,
            }
        ],
    }
    row = render([mapping]).splitlines()[2]
    assert row.split()[5] == shown.split()[0]
    assert (" +1 " in row) == ("+1" in shown)


@pytest.mark.parametrize(
    ("sequence", "shown"),
    [
        (None, "-"),
        (SHARD_END, SHARD_END),
        ("7", "7"),
        ("123456789012345", "123456789012345"),  # 15 digits: no shorter abbreviated
        ("1234567890123456", "...567890123456"),
        (SEQUENCE, "...989136588802"),
    ],
)
def test_abbreviate_sequence(sequence: str | None, shown: str) -> None:
    assert abbreviate_sequence(sequence) == shown


@pytest.mark.parametrize(
    ("millis", "shown"),
    [
        (None, "-"),
        (0, "0ms"),
        (999, "999ms"),
        (1000, "1.0s"),
        (59_999, "60.0s"),
        (60_000, "1.0m"),
        (3_599_999, "60.0m"),
        (3_600_000, "1.0h"),
        (86_400_000, "24.0h"),
    ],
)
def test_millis_text(millis: int | None, shown: str) -> None:
    assert millis_text(millis) == shown


def test_a_table_arn_shows_the_shards_of_its_current_stream(
    tmp_path: Path, sqlite_store_url: str, tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tables.create()
    write_leases(sqlite_store_url, table["LatestStreamArn"])
    config = write_config(tmp_path, sqlite_store_url, (MAPPING_ID, table["TableArn"]))

    [mapping] = json.loads(run_status(config, True, capsys))

    assert (mapping["event_source_arn"], mapping["stream"]) == (table["TableArn"], table["LatestStreamArn"])
    assert [shard["shard_id"] for shard in mapping["shards"]] == [f"shardId-00000000000{i}" for i in range(4)]


def test_a_table_without_a_stream_is_its_mappings_error_only(
    tmp_path: Path, sqlite_store_url: str, tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tables.create(with_stream=False)
    write_leases(sqlite_store_url, KINESIS_ARN)
    broken_id = "0d6f2a55-7a57-4c0e-8f7e-1a2b3c4d5e6f"
    config = write_config(
        tmp_path, sqlite_store_url, (broken_id, table["TableArn"]), (MAPPING_ID, KINESIS_ARN)
    )

    broken, working = json.loads(run_status(config, True, capsys))
    lines = run_status(config, False, capsys).splitlines()

    assert (broken["stream"], broken["shards"]) == (None, [])
    assert table["TableName"] in broken["error"] and "no enabled stream" in broken["error"]
    assert "error" not in working and len(working["shards"]) == 4
    assert lines[1:4] == [f"  table  {table['TableArn']}", "  stream -", f"  ! {broken['error']}"]


NOW = 1_000_000.0
FRESH = {
    "owner": "b:2",
    "reported_at": NOW - 0.8,
    "session_seconds": 6.0,
    "committed": 1107,
    "in_flight": [{"first": 1107, "last": 1110, "records": 4}],
    "state": "PROCESSING",
    "retries": 0,
    "last_processing_result": "OK",
    "last_error": None,
}


@pytest.mark.parametrize(
    ("name", "report", "stale", "committed", "in_flight"),
    [
        # The owner's committed offset goes beside its batch in flight (one moment), not Kafka's newer one.
        ("fresh report", FRESH, False, 1107, [{"first": 1107, "last": 1110, "records": 4}]),
        ("older than its session", {**FRESH, "reported_at": NOW - 7.0}, True, 1141, None),
        ("no report", {}, False, 1141, None),
        (
            "a report without a moment (older daemon)",
            {**FRESH, "reported_at": None},
            False,
            1107,
            [{"first": 1107, "last": 1110, "records": 4}],
        ),
    ],
)
def test_a_partition_row_takes_its_figures_from_one_moment_and_marks_a_stale_owner(
    name: str, report: dict[str, object], stale: bool, committed: int, in_flight: object
) -> None:
    row = partition_row(PartitionPosition(3, committed=1141, end=1200), report, NOW)

    assert row["owner_stale"] is stale
    assert (row["committed"], row["lag"], row["in_flight"]) == (committed, 1200 - committed, in_flight)
    assert row["owner"] == report.get("owner")


def test_a_stale_owner_says_so_in_the_table() -> None:
    row = partition_row(
        PartitionPosition(3, committed=1141, end=1200), {**FRESH, "reported_at": NOW - 7.0}, NOW
    )
    lines = render([{"uuid": "u", "function": "fn", "state": "Enabled", "partitions": [row]}]).splitlines()

    assert "b:2 STALE" in lines[2]
    assert lines[3].strip() == (
        "! b:2 last reported 7.0s ago, longer than its session: it may no longer own this partition "
        "(a newer owner reports within a second)"
    )
