"""Shard discovery against the emulators: Kinesis lineage after SplitShard and MergeShards and
ListShards paging on kinesis-mock; DynamoDB Local's stream shards, stream status and table ARN
resolution. DescribeStream paging over several shards uses a scripted client, since DynamoDB
Local gives a stream one shard only (see SERVICES.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from stream_services import DynamoDBLocal, KinesisMock, create_table, wait_stream_active

from esm.sources.dynamodb import DynamoDBReadError, StreamNotFoundError
from esm.sources.kinesis import KinesisReadError, KinesisStreamNotFoundError
from esm.sources.stream_discovery import (
    DynamoDBShardLister,
    KinesisShardLister,
    ShardInfo,
    ShardLister,
    TableStreamNotEnabledError,
    resolve_dynamodb_stream_arn,
)

KINESIS_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"
TABLE_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t"
STREAM_ARN = f"{TABLE_ARN}/stream/2026-01-01T00:00:00.000"


# -- ShardInfo from a response (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"ShardId": "s0", "SequenceNumberRange": {"StartingSequenceNumber": "1"}},
            ShardInfo("s0", (), closed=False),
        ),
        (
            {"ShardId": "s3", "ParentShardId": "s0", "SequenceNumberRange": {"StartingSequenceNumber": "9"}},
            ShardInfo("s3", ("s0",), closed=False),
        ),
        (
            {
                "ShardId": "s5",
                "ParentShardId": "s1",
                "AdjacentParentShardId": "s2",
                "SequenceNumberRange": {"StartingSequenceNumber": "9", "EndingSequenceNumber": "12"},
            },
            ShardInfo("s5", ("s1", "s2"), closed=True),
        ),
        ({"ShardId": "s6", "AdjacentParentShardId": "s2"}, ShardInfo("s6", ("s2",), closed=False)),
    ],
)
def test_shard_info_from_response(raw: dict[str, Any], expected: ShardInfo) -> None:
    assert ShardInfo.from_response(raw) == expected


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"ParentShardId": "s0"}, "ShardId"),
        ({"ShardId": ""}, "ShardId"),
        ({"ShardId": "s1", "ParentShardId": 7}, "s1: ParentShardId"),
        ({"ShardId": "s1", "AdjacentParentShardId": ""}, "s1: AdjacentParentShardId"),
        ({"ShardId": "s1", "SequenceNumberRange": "12"}, "s1: SequenceNumberRange"),
    ],
)
def test_shard_info_from_a_malformed_response(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ShardInfo.from_response(raw)


@pytest.mark.parametrize(
    ("make", "arn"),
    [
        (KinesisShardLister, "s"),
        (KinesisShardLister, TABLE_ARN),
        (KinesisShardLister, f"{KINESIS_ARN}/consumer/c:1"),
        (DynamoDBShardLister, TABLE_ARN),
        (DynamoDBShardLister, KINESIS_ARN),
    ],
)
def test_listers_refuse_other_arns(make: Callable[[Any, str], ShardLister], arn: str) -> None:
    with pytest.raises(ValueError, match="ARN"):
        make(object(), arn)


@pytest.mark.parametrize("max_results", [0, 10001])
def test_kinesis_page_size_is_checked(max_results: int) -> None:
    with pytest.raises(ValueError, match="max_results"):
        KinesisShardLister(object(), KINESIS_ARN, max_results=max_results)


@pytest.mark.parametrize("page_size", [0, 101])
def test_dynamodb_page_size_is_checked(page_size: int) -> None:
    with pytest.raises(ValueError, match="page_size"):
        DynamoDBShardLister(object(), STREAM_ARN, page_size=page_size)


# -- Kinesis (kinesis-mock) --------------------------------------------------------------------


class RecordingKinesis:
    """The real client; keeps each ListShards request."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.requests: list[dict[str, Any]] = []

    def list_shards(self, **kwargs: Any) -> Any:
        self.requests.append(kwargs)
        return self.real.list_shards(**kwargs)


@pytest.fixture
def kinesis(kinesis_mock: KinesisMock) -> Any:
    return kinesis_mock.client()


@pytest.fixture
def new_stream(kinesis: Any) -> Iterator[Callable[[int], tuple[str, str]]]:
    """`new_stream(shard_count)` -> (name, ARN) of a fresh ACTIVE stream, deleted afterwards."""
    names: list[str] = []

    def make(shard_count: int) -> tuple[str, str]:
        name = f"s-{uuid.uuid4().hex[:10]}"
        kinesis.create_stream(StreamName=name, ShardCount=shard_count)
        names.append(name)
        wait_stream_active(kinesis, name)
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        return name, str(summary["StreamARN"])

    yield make
    for name in names:
        wait_stream_active(kinesis, name)
        kinesis.delete_stream(StreamName=name)


def open_shard_ids(kinesis: Any, name: str) -> list[str]:
    return [s["ShardId"] for s in kinesis.list_shards(StreamName=name)["Shards"]]


def test_kinesis_new_stream_lists_open_shards_without_parents(
    kinesis: Any, new_stream: Callable[[int], tuple[str, str]]
) -> None:
    name, arn = new_stream(3)
    shards = KinesisShardLister(kinesis, arn).list_shards()
    assert shards == [ShardInfo(shard_id, (), closed=False) for shard_id in open_shard_ids(kinesis, name)]
    assert len(shards) == 3


def test_kinesis_split_lists_the_closed_parent_before_both_children(
    kinesis: Any, new_stream: Callable[[int], tuple[str, str]]
) -> None:
    name, arn = new_stream(3)
    [first, *_] = kinesis.list_shards(StreamName=name)["Shards"]
    low, high = (int(first["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    kinesis.split_shard(
        StreamName=name, ShardToSplit=first["ShardId"], NewStartingHashKey=str((low + high) // 2)
    )
    wait_stream_active(kinesis, name)

    shards = KinesisShardLister(kinesis, arn).list_shards()

    ids = [s.shard_id for s in shards]
    parent = shards[ids.index(first["ShardId"])]
    children = [s for s in shards if s.parent_shard_ids]
    assert len(shards) == 5
    assert parent.closed
    assert [c.parent_shard_ids for c in children] == [(parent.shard_id,)] * 2
    assert not any(c.closed for c in children)
    assert all(ids.index(parent.shard_id) < ids.index(c.shard_id) for c in children)


def test_kinesis_merge_names_parent_then_adjacent_parent(
    kinesis: Any, new_stream: Callable[[int], tuple[str, str]]
) -> None:
    name, arn = new_stream(3)
    first, second, third = open_shard_ids(kinesis, name)
    kinesis.merge_shards(StreamName=name, ShardToMerge=second, AdjacentShardToMerge=third)
    wait_stream_active(kinesis, name)

    shards = KinesisShardLister(kinesis, arn).list_shards()

    by_id = {s.shard_id: s for s in shards}
    [child] = [s for s in shards if s.parent_shard_ids]
    assert child.parent_shard_ids == (second, third)
    assert not child.closed
    assert by_id[second].closed and by_id[third].closed and not by_id[first].closed
    ids = [s.shard_id for s in shards]
    assert ids.index(second) < ids.index(child.shard_id) and ids.index(third) < ids.index(child.shard_id)


def test_kinesis_pages_follow_next_token_without_the_stream_arn(
    kinesis: Any, new_stream: Callable[[int], tuple[str, str]]
) -> None:
    name, arn = new_stream(5)
    client = RecordingKinesis(kinesis)

    shards = KinesisShardLister(client, arn, max_results=2).list_shards()

    assert [s.shard_id for s in shards] == open_shard_ids(kinesis, name)
    assert len(client.requests) == 3
    assert client.requests[0] == {"StreamARN": arn, "MaxResults": 2}
    for later in client.requests[1:]:
        assert set(later) == {"NextToken", "MaxResults"}


def test_kinesis_missing_stream_is_named(kinesis: Any) -> None:
    arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KinesisStreamNotFoundError, match=arn):
        KinesisShardLister(kinesis, arn).list_shards()


class StuckKinesis:
    """A service whose every page hands out the same NextToken."""

    def list_shards(self, **kwargs: Any) -> dict[str, Any]:
        return {"Shards": [{"ShardId": "s0"}], "NextToken": "again"}


def test_kinesis_token_that_does_not_advance_is_an_error() -> None:
    with pytest.raises(KinesisReadError, match="NextToken 'again' does not advance"):
        KinesisShardLister(StuckKinesis(), KINESIS_ARN).list_shards()


# -- DynamoDB Streams (DynamoDB Local) ---------------------------------------------------------


class Tables:
    """Creates tables with unique names on DynamoDB Local and deletes them afterwards."""

    def __init__(self, emulator: DynamoDBLocal) -> None:
        dynamodb: Any = emulator.client()
        streams: Any = emulator.client("dynamodbstreams")
        self.dynamodb = dynamodb
        self.streams = streams
        self.names: list[str] = []

    def create(self, stream_view: str | None = "NEW_AND_OLD_IMAGES") -> dict[str, Any]:
        """A new table's TableDescription; `stream_view` None: without a stream."""
        table: dict[str, Any] = create_table(self.dynamodb, stream_view)
        self.names.append(table["TableName"])
        return table

    def disable_stream(self, name: str) -> None:
        self.dynamodb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})


@pytest.fixture
def tables(dynamodb_local: DynamoDBLocal) -> Iterator[Tables]:
    made = Tables(dynamodb_local)
    yield made
    for name in made.names:
        made.dynamodb.delete_table(TableName=name)


def test_dynamodb_stream_lists_its_open_shard(tables: Tables) -> None:
    table = tables.create()
    lister = DynamoDBShardLister(tables.streams, table["LatestStreamArn"], page_size=1)

    [shard] = lister.list_shards()

    described = tables.streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]
    assert shard == ShardInfo(described["Shards"][0]["ShardId"], (), closed=False)
    assert lister.stream_status() == "ENABLED"


def test_dynamodb_disabled_stream_lists_its_shard_closed(tables: Tables) -> None:
    table = tables.create()
    lister = DynamoDBShardLister(tables.streams, table["LatestStreamArn"])
    [before] = lister.list_shards()

    tables.disable_stream(table["TableName"])

    assert lister.list_shards() == [ShardInfo(before.shard_id, (), closed=True)]
    assert lister.stream_status() == "DISABLED"


def test_dynamodb_missing_stream_is_named(tables: Tables) -> None:
    arn = f"arn:aws:dynamodb:ddblocal:000000000000:table/missing-{uuid.uuid4().hex[:8]}/stream/x"
    lister = DynamoDBShardLister(tables.streams, arn)
    with pytest.raises(StreamNotFoundError, match=arn):
        lister.list_shards()
    with pytest.raises(StreamNotFoundError, match=arn):
        lister.stream_status()


class PagedStreams:
    """DescribeStream over a scripted list of shards, paged as the service pages them."""

    def __init__(self, shards: list[dict[str, Any]]) -> None:
        self.shards = shards
        self.requests: list[dict[str, Any]] = []

    def describe_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(kwargs)
        ids = [s.get("ShardId") for s in self.shards]
        start = ids.index(kwargs["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in kwargs else 0
        page = self.shards[start : start + kwargs["Limit"]]
        description: dict[str, Any] = {"StreamStatus": "ENABLED", "Shards": page}
        if start + len(page) < len(self.shards):
            description["LastEvaluatedShardId"] = page[-1]["ShardId"]
        return {"StreamDescription": description}


def test_dynamodb_pages_follow_last_evaluated_shard_id() -> None:
    ended = {"StartingSequenceNumber": "1", "EndingSequenceNumber": "5"}
    shards: list[dict[str, Any]] = [
        {"ShardId": "shard-a", "SequenceNumberRange": ended},
        {"ShardId": "shard-b", "ParentShardId": "shard-a", "SequenceNumberRange": ended},
        {"ShardId": "shard-c", "ParentShardId": "shard-b", "SequenceNumberRange": ended},
        {
            "ShardId": "shard-d",
            "ParentShardId": "shard-c",
            "SequenceNumberRange": {"StartingSequenceNumber": "6"},
        },
        {"ShardId": "shard-e"},
    ]
    client = PagedStreams(shards)

    listed = DynamoDBShardLister(client, STREAM_ARN, page_size=2).list_shards()

    assert listed == [
        ShardInfo("shard-a", (), closed=True),
        ShardInfo("shard-b", ("shard-a",), closed=True),
        ShardInfo("shard-c", ("shard-b",), closed=True),
        ShardInfo("shard-d", ("shard-c",), closed=False),
        ShardInfo("shard-e", (), closed=False),
    ]
    assert [r.get("ExclusiveStartShardId") for r in client.requests] == [None, "shard-b", "shard-d"]
    assert {r["StreamArn"] for r in client.requests} == {STREAM_ARN}


@pytest.mark.parametrize(
    ("shards", "named"),
    [
        ([{"ShardId": "shard-a"}, {"ParentShardId": "shard-a"}], "ShardId"),
        ([{"ShardId": "shard-a", "ParentShardId": ["x"]}], "shard-a: ParentShardId"),
    ],
)
def test_dynamodb_malformed_shard_is_a_read_error(shards: list[dict[str, Any]], named: str) -> None:
    with pytest.raises(DynamoDBReadError, match=named):
        DynamoDBShardLister(PagedStreams(shards), STREAM_ARN).list_shards()


# -- resolving a table ARN ------------------------------------------------------------------------


def test_table_arn_resolves_to_the_latest_stream(tables: Tables) -> None:
    table = tables.create()
    assert resolve_dynamodb_stream_arn(tables.dynamodb, table["TableArn"]) == table["LatestStreamArn"]


def test_stream_arn_is_returned_unchanged_without_a_call() -> None:
    # `object()` has no describe_table: any call would fail.
    assert resolve_dynamodb_stream_arn(object(), STREAM_ARN) == STREAM_ARN


def test_table_without_stream_is_named(tables: Tables) -> None:
    table = tables.create(stream_view=None)
    with pytest.raises(TableStreamNotEnabledError, match=repr(table["TableName"])):
        resolve_dynamodb_stream_arn(tables.dynamodb, table["TableArn"])


def test_table_with_disabled_stream_is_named(tables: Tables) -> None:
    # DescribeTable still reports the disabled stream as LatestStreamArn.
    table = tables.create()
    tables.disable_stream(table["TableName"])
    with pytest.raises(TableStreamNotEnabledError, match=repr(table["TableName"])):
        resolve_dynamodb_stream_arn(tables.dynamodb, table["TableArn"])


def test_missing_table_is_named(tables: Tables) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(StreamNotFoundError, match=name) as raised:
        resolve_dynamodb_stream_arn(tables.dynamodb, f"arn:aws:dynamodb:ddblocal:000000000000:table/{name}")
    assert not isinstance(raised.value, TableStreamNotEnabledError)


@pytest.mark.parametrize("arn", [KINESIS_ARN, "table/t", "arn:aws:dynamodb:r:1:table"])
def test_resolving_other_arns_is_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="ARN"):
        resolve_dynamodb_stream_arn(object(), arn)
