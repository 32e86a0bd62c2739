"""A stream mapping's shards for `esm status`: leases written into a real SQLite store, merged with
reports published to it; table ARNs resolved on DynamoDB Local."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from esm.config.arns import parse_event_source_arn
from esm.config.sources import DynamoDBStreamsSource, KinesisSource
from esm.ownership.leases import SHARD_END, Lease, lease_namespace
from esm.status.stream_leases import (
    StreamArnError,
    lease_condition,
    resolve_stream_arn,
    shard_rows,
    unowned_shards,
)
from esm.stores import Store, open_store
from esm.stores.status import DATA_LOSS_KEPT_SECONDS, data_loss_key

from .conftest import Tables

ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
NAMESPACE = lease_namespace("m-1", ARN)
NOW = 1_000.0
SEQUENCE = "49590338271490256608559692538361571095921575989136588802"


@pytest.fixture
async def store(sqlite_store_url: str) -> AsyncIterator[Store]:
    opened = open_store(sqlite_store_url)
    yield opened
    await opened.close()


async def hold(
    store: Store,
    shard_id: str,
    owner: str,
    taken_at: float,
    ttl: float = 10.0,
    parents: Sequence[str] = (),
    checkpoint: str | None = None,
) -> Lease:
    """`owner` takes the lease at `taken_at` and, if given, checkpoints `checkpoint`."""
    lease = await store.leases.ensure(NAMESPACE, shard_id, parents)
    taken = await store.leases.take(NAMESPACE, shard_id, owner, lease.token, ttl, taken_at)
    assert taken is not None
    if checkpoint is not None:
        assert await store.leases.checkpoint(NAMESPACE, shard_id, owner, taken.token, checkpoint, taken_at)
    return taken


async def rows(store: Store, reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What `esm status` shows at NOW: reports published just before, read back with the leases."""
    await store.status.publish("m-1", reports, 5.0, NOW - 0.5)
    return shard_rows(await store.leases.list(NAMESPACE), await store.status.read("m-1", NOW), NOW)


LIVE_REPORT = {
    "owner": "a:1",
    "state": "PROCESSING",
    "parents": [],
    "checkpoint": SEQUENCE,
    "lanes": 2,
    "buffered": 40,
    "in_flight": [
        {"first": "4959033827149025660855969253836157109592157598913658880" + "3", "last": "9", "records": 7},
        {"first": "5", "last": "6", "records": 2},
    ],
    "millis_behind_latest": 1500,
    "data_lost_at": 990.5,
    "last_error": "Function call failed: boom",
    "last_processing_result": "PROBLEM: Function call failed",
}


async def test_every_leased_shard_shows_and_only_live_owners_reports_count(store: Store) -> None:
    await hold(store, "shardId-000000000000", "a:1", taken_at=NOW - 1, checkpoint=SEQUENCE)
    await hold(store, "shardId-000000000001", "b:2", taken_at=NOW - 20, checkpoint="42")  # b:2 died
    await store.leases.ensure(
        NAMESPACE, "shardId-000000000002", ["shardId-000000000000", "shardId-000000000001"]
    )

    seen = await rows(
        store,
        {
            "shardId-000000000000": LIVE_REPORT,
            "shardId-000000000001": {"owner": "b:2", "state": "PROCESSING"},  # its last words
            "shardId-000000000002": {"owner": "c:3", "state": "PROCESSING"},  # no lease behind it
        },
    )

    no_report = dict.fromkeys(
        (
            "state",
            "lanes",
            "buffered",
            "in_flight",
            "millis_behind_latest",
            "last_processing_result",
            "last_error",
            "data_lost_at",
        )
    )
    assert seen == [
        {
            "shard_id": "shardId-000000000000",
            "parents": [],
            "owner": "a:1",
            "lease": "held",
            "lease_expires_in_seconds": 9.0,
            "checkpoint": SEQUENCE,
            "state": "PROCESSING",
            "lanes": 2,
            "buffered": 40,
            "in_flight": LIVE_REPORT["in_flight"],
            "millis_behind_latest": 1500,
            "last_processing_result": "PROBLEM: Function call failed",
            "last_error": "Function call failed: boom",
            "data_lost_at": 990.5,
        },
        {
            "shard_id": "shardId-000000000001",
            "parents": [],
            "owner": None,
            "lease": "expired",
            "lease_expires_in_seconds": None,
            "checkpoint": "42",
            **no_report,
        },
        {
            "shard_id": "shardId-000000000002",
            "parents": ["shardId-000000000000", "shardId-000000000001"],
            "owner": None,
            "lease": "free",
            "lease_expires_in_seconds": None,
            "checkpoint": None,
            **no_report,
        },
    ]


@pytest.mark.parametrize(
    ("taken_at", "released", "report_owner", "owner_shown", "state_shown"),
    [
        (NOW - 1, False, "a:1", "a:1", "PROCESSING"),
        (NOW - 1, False, "b:2", "a:1", None),  # b:2 lost the shard to a:1; its report lingers
        (NOW - 10, False, "a:1", None, None),  # expired at NOW exactly: a:1 stopped renewing
        (NOW - 1, True, "a:1", None, None),  # released at shutdown
    ],
)
async def test_a_report_counts_only_while_its_owner_holds_the_lease(
    store: Store,
    taken_at: float,
    released: bool,
    report_owner: str,
    owner_shown: str | None,
    state_shown: str | None,
) -> None:
    lease = await hold(store, "shardId-000000000000", "a:1", taken_at)
    if released:
        assert await store.leases.release(NAMESPACE, lease.shard_id, "a:1", lease.token)

    [row] = await rows(store, {lease.shard_id: {"owner": report_owner, "state": "PROCESSING"}})

    assert (row["owner"], row["state"]) == (owner_shown, state_shown)


async def test_a_recorded_data_loss_shows_after_its_owner_is_gone(store: Store) -> None:
    lease = await hold(store, "shardId-000000000000", "a:1", NOW - 60, ttl=10.0)  # expired
    lost_at = NOW - 30
    await store.status.publish(
        data_loss_key("m-1"), {lease.shard_id: {"data_lost_at": lost_at}}, DATA_LOSS_KEPT_SECONDS, lost_at
    )

    [row] = shard_rows(
        await store.leases.list(NAMESPACE),
        await store.status.read("m-1", NOW),
        NOW,
        await store.status.read(data_loss_key("m-1"), NOW),
    )

    assert (row["owner"], row["state"], row["data_lost_at"]) == (None, None, lost_at)


@pytest.mark.parametrize(
    ("owner", "expires_at", "expected"),
    [
        (None, 0.0, "free"),
        ("a:1", NOW + 0.1, "held"),
        ("a:1", NOW, "expired"),
        ("a:1", NOW - 30, "expired"),
    ],
)
def test_lease_condition(owner: str | None, expires_at: float, expected: str) -> None:
    lease = Lease(NAMESPACE, "shardId-000000000000", owner, expires_at, token=1, checkpoint=None)
    assert lease_condition(lease, NOW) == expected


def lease(shard: int, owner: str | None, expires_at: float, checkpoint: str | None = None) -> Lease:
    return Lease(NAMESPACE, f"shardId-{shard:012d}", owner, expires_at, token=1, checkpoint=checkpoint)


@pytest.mark.parametrize(
    ("leases", "unowned"),
    [
        ([], 0),
        ([lease(0, "a:1", NOW + 5), lease(1, "b:2", NOW + 1)], 0),
        ([lease(0, "a:1", NOW + 5), lease(1, None, 0.0)], 1),
        ([lease(0, "a:1", NOW - 1), lease(1, None, 0.0), lease(2, "a:1", NOW)], 3),
        # A finished shard needs no owner, held or not.
        ([lease(0, None, 0.0, SHARD_END), lease(1, "a:1", NOW - 9, SHARD_END), lease(2, "a:1", NOW + 5)], 0),
        ([lease(0, None, 0.0, SEQUENCE), lease(1, "a:1", NOW + 5, SEQUENCE)], 1),
    ],
)
def test_unowned_shards(leases: list[Lease], unowned: int) -> None:
    assert unowned_shards(leases, NOW) == unowned


@pytest.mark.parametrize(
    "arn",
    [ARN, "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2024-01-01T00:00:00.000"],
)
def test_stream_arns_are_used_as_they_are(arn: str) -> None:
    source = parse_event_source_arn(arn)
    assert isinstance(source, KinesisSource | DynamoDBStreamsSource)
    assert resolve_stream_arn(source) == arn  # no AWS call: none is configured here


def test_a_table_arn_resolves_to_its_current_stream(tables: Tables) -> None:
    table = tables.create()
    source = parse_event_source_arn(table["TableArn"])
    assert isinstance(source, DynamoDBStreamsSource)
    assert resolve_stream_arn(source) == table["LatestStreamArn"]


def test_a_table_without_a_stream_is_named(tables: Tables) -> None:
    table = tables.create(with_stream=False)
    source = parse_event_source_arn(table["TableArn"])
    assert isinstance(source, DynamoDBStreamsSource)
    with pytest.raises(StreamArnError, match=f"table '{table['TableName']}'.*no enabled stream"):
        resolve_stream_arn(source)
