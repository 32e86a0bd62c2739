"""The stream emulators the Kinesis and DynamoDB Streams work will test against answer as the real
services do for the calls esm needs (a smoke test of the test infrastructure)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from stream_services import DynamoDBLocal, KinesisMock, create_table


def test_kinesis_mock_round_trip(kinesis_mock: KinesisMock) -> None:
    client: Any = kinesis_mock.client()
    name = f"s-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=2)
    deadline = time.monotonic() + 30
    while (
        client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
        != "ACTIVE"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client.put_record(StreamName=name, Data=b'{"n": 1}', PartitionKey="k1")
    shards = client.list_shards(StreamName=name)["Shards"]
    assert len(shards) == 2
    seen = []
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )
        seen += client.get_records(ShardIterator=iterator["ShardIterator"], Limit=100)["Records"]
    assert [r["Data"] for r in seen] == [b'{"n": 1}']


def test_dynamodb_local_streams_an_insert(dynamodb_local: DynamoDBLocal) -> None:
    dynamodb: Any = dynamodb_local.client()
    streams: Any = dynamodb_local.client("dynamodbstreams")
    described = create_table(dynamodb)
    table, arn = described["TableName"], described["LatestStreamArn"]
    dynamodb.put_item(TableName=table, Item={"id": {"S": "a"}, "n": {"N": "1"}})
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [(r["eventName"], r["dynamodb"]["NewImage"]) for r in records] == [
        ("INSERT", {"id": {"S": "a"}, "n": {"N": "1"}})
    ]
