"""The DynamoDB Streams shard reader against DynamoDB Local: order across pages, shard end,
iterator expiry and trimmed checkpoints (injected by a tiny client wrapper while the records
still come from the emulator), resume after a checkpoint, throttling backoff, error types."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from stream_services import DynamoDBLocal, create_table, reader_client

from esm.events.unreadable import unreadable_reason
from esm.sources.dynamodb import (
    DynamoDBReadError,
    DynamoDBReaderSettings,
    DynamoDBShardReader,
    InvalidRequestError,
    IteratorExpiredError,
    ServiceUnavailableError,
    StartKind,
    StartPosition,
    StreamNotFoundError,
    ThrottledError,
    translate_error,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_error(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class FaultyClient:
    """The real streams client, plus errors queued per operation and a log of iterator requests."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.faults: dict[str, list[ClientError]] = {"get_records": [], "get_shard_iterator": []}
        self.iterator_requests: list[tuple[str, str | None]] = []
        self.get_records_calls = 0
        if hasattr(client, "get_records_async"):  # the lean client: the readers' usual path
            self.get_records_async = self._get_records_async

    async def _get_records_async(self, **kwargs: Any) -> Any:
        self.get_records_calls += 1
        if self.faults["get_records"]:
            raise self.faults["get_records"].pop(0)
        return self.altered(await self._client.get_records_async(**kwargs))

    def altered(self, result: Any) -> Any:
        """What the client makes of a GetRecords answer (nothing, here)."""
        return result

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        self.iterator_requests.append((kwargs["ShardIteratorType"], kwargs.get("SequenceNumber")))
        if self.faults["get_shard_iterator"]:
            raise self.faults["get_shard_iterator"].pop(0)
        return self._client.get_shard_iterator(**kwargs)

    def get_records(self, **kwargs: Any) -> Any:
        self.get_records_calls += 1
        if self.faults["get_records"]:
            raise self.faults["get_records"].pop(0)
        return self.altered(self._client.get_records(**kwargs))


class Table:
    def __init__(self, emulator: DynamoDBLocal, streams: Any) -> None:
        # Typed Any in one step: mypy would narrow an attribute to `client()`'s declared `object`.
        dynamodb: Any = emulator.client()
        self.dynamodb = dynamodb
        self.streams = streams
        described = create_table(self.dynamodb)
        self.name: str = described["TableName"]
        self.stream_arn: str = described["LatestStreamArn"]

    def put(self, *ids: str) -> None:
        for item_id in ids:
            self.dynamodb.put_item(TableName=self.name, Item={"id": {"S": item_id}})

    def shard_id(self) -> str:
        [shard] = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        return str(shard["ShardId"])

    def disable_stream(self) -> None:
        self.dynamodb.update_table(TableName=self.name, StreamSpecification={"StreamEnabled": False})


@pytest.fixture(params=["lean", "botocore"])
def table(
    request: pytest.FixtureRequest, dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Table]:
    """A fresh table with a stream, read through the readers' client as the daemon builds it,
    with either GetRecords transport."""
    streams = reader_client(monkeypatch, dynamodb_local.endpoint, "dynamodbstreams", request.param)
    made = Table(dynamodb_local, streams)
    yield made
    made.dynamodb.delete_table(TableName=made.name)


ReaderFactory = Callable[..., DynamoDBShardReader]


@pytest.fixture
def reader_for(table: Table) -> ReaderFactory:
    def make(
        start: StartPosition | None = None,
        client: Any = None,
        clock: Callable[[], float] | None = None,
        **settings: Any,
    ) -> DynamoDBShardReader:
        return DynamoDBShardReader(
            client if client is not None else table.streams,
            table.stream_arn,
            table.shard_id(),
            start or StartPosition.trim_horizon(),
            clock or FakeClock(),
            DynamoDBReaderSettings(**settings),
        )

    return make


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["Keys"]["id"]["S"] for r in records]


async def test_reads_records_in_order_across_pages(table: Table, reader_for: ReaderFactory) -> None:
    table.put(*[f"k{i}" for i in range(7)])
    reader = reader_for(limit=3, idle_delay_seconds=0.2)

    pages = [await reader.read() for _ in range(3)]

    assert [ids(p.records) for p in pages] == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"]]
    assert [p.next_poll_delay_seconds for p in pages] == [0.0, 0.0, 0.2]
    assert not any(p.shard_ended or p.data_lost or p.throttled for p in pages)
    first = pages[0].records[0]
    assert first["eventName"] == "INSERT"
    assert first["eventSourceARN"] == table.stream_arn
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for p in pages for r in p.records]
    assert sequence_numbers == sorted(sequence_numbers)
    assert reader.last_sequence_number == pages[2].records[0]["dynamodb"]["SequenceNumber"]


async def test_latest_sees_only_records_written_after_the_first_read(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("old")
    reader = reader_for(StartPosition.latest())
    assert (await reader.read()).records == []
    table.put("new")
    assert ids((await reader.read()).records) == ["new"]


async def test_disabled_stream_ends_the_shard_after_its_last_records(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("a", "b", "c")
    client = FaultyClient(table.streams)
    reader = reader_for(client=client, limit=2)
    assert ids((await reader.read()).records) == ["a", "b"]
    table.disable_stream()
    table.put("after-disable")  # not streamed: the stream is off

    last = await reader.read()
    assert ids(last.records) == ["c"]
    assert last.shard_ended and reader.shard_ended
    assert last.next_poll_delay_seconds == 0.0
    calls = client.get_records_calls
    again = await reader.read()
    assert again.shard_ended and again.records == []
    assert client.get_records_calls == calls  # an ended shard is not read again


async def test_expired_iterator_resumes_after_the_last_returned_record(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("a", "b", "c", "d")
    client = FaultyClient(table.streams)
    reader = reader_for(client=client, limit=2)
    first = await reader.read()
    assert ids(first.records) == ["a", "b"]

    client.faults["get_records"].append(client_error("ExpiredIteratorException", "GetRecords"))
    second = await reader.read()

    assert ids(second.records) == ["c", "d"]
    assert not second.data_lost
    assert client.iterator_requests == [
        ("TRIM_HORIZON", None),
        ("AFTER_SEQUENCE_NUMBER", first.records[-1]["dynamodb"]["SequenceNumber"]),
    ]


async def test_expired_iterator_before_any_record_uses_the_start_position(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("a", "b", "c")
    checkpoint = _sequence_number_of(table, index=0)
    client = FaultyClient(table.streams)
    reader = reader_for(StartPosition.after(checkpoint), client=client)
    client.faults["get_records"].append(client_error("ExpiredIteratorException", "GetRecords"))

    assert ids((await reader.read()).records) == ["b", "c"]
    assert client.iterator_requests == [("AFTER_SEQUENCE_NUMBER", checkpoint)] * 2


async def test_iterator_expiring_twice_in_one_read_raises_a_retryable_error(
    table: Table, reader_for: ReaderFactory
) -> None:
    client = FaultyClient(table.streams)
    reader = reader_for(client=client)
    client.faults["get_records"] += [client_error("ExpiredIteratorException", "GetRecords")] * 2
    with pytest.raises(IteratorExpiredError) as raised:
        await reader.read()
    assert raised.value.retryable
    table.put("a")
    assert ids((await reader.read()).records) == ["a"]


async def test_old_iterator_is_replaced_before_use(table: Table, reader_for: ReaderFactory) -> None:
    table.put("a", "b")
    clock = FakeClock()
    client = FaultyClient(table.streams)
    reader = reader_for(client=client, clock=clock, limit=1, iterator_max_age_seconds=600)
    first = await reader.read()
    clock.now += 599
    assert ids((await reader.read()).records) == ["b"]
    assert len(client.iterator_requests) == 1
    clock.now += 600
    table.put("c")
    assert ids((await reader.read()).records) == ["c"]
    assert client.iterator_requests[-1] == (
        "AFTER_SEQUENCE_NUMBER",
        _sequence_number_of(table, index=1),
    )
    assert first.records


async def test_resumes_after_a_checkpoint_sequence_number(table: Table, reader_for: ReaderFactory) -> None:
    table.put("a", "b", "c", "d")
    checkpoint = _sequence_number_of(table, index=1)
    reader = reader_for(StartPosition.after(checkpoint))
    assert ids((await reader.read()).records) == ["c", "d"]


async def test_trimmed_checkpoint_resumes_at_trim_horizon_and_reports_data_loss(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("a", "b")
    checkpoint = _sequence_number_of(table, index=0)
    client = FaultyClient(table.streams)
    client.faults["get_shard_iterator"].append(client_error("TrimmedDataAccessException", "GetShardIterator"))
    reader = reader_for(StartPosition.after(checkpoint), client=client)

    result = await reader.read()

    assert result.data_lost
    assert ids(result.records) == ["a", "b"]
    assert [kind for kind, _ in client.iterator_requests] == ["AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON"]
    assert not (await reader.read()).data_lost


async def test_trimmed_records_behind_an_iterator_restart_at_trim_horizon(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("a", "b")
    client = FaultyClient(table.streams)
    reader = reader_for(client=client, limit=1)
    assert ids((await reader.read()).records) == ["a"]
    client.faults["get_records"].append(client_error("TrimmedDataAccessException", "GetRecords"))

    result = await reader.read()

    assert result.data_lost
    assert ids(result.records) == ["a"]  # TRIM_HORIZON again: at-least-once, nothing skipped
    assert client.iterator_requests[-1] == ("TRIM_HORIZON", None)


async def test_trimmed_at_trim_horizon_raises_instead_of_looping(
    table: Table, reader_for: ReaderFactory
) -> None:
    client = FaultyClient(table.streams)
    reader = reader_for(client=client)
    client.faults["get_records"].append(client_error("TrimmedDataAccessException", "GetRecords"))
    with pytest.raises(DynamoDBReadError):
        await reader.read()
    assert client.get_records_calls == 1


async def test_throttling_backs_off_with_a_cap_and_resets_after_success(
    table: Table, reader_for: ReaderFactory
) -> None:
    table.put("a")
    client = FaultyClient(table.streams)
    reader = reader_for(client=client, throttle_backoff_seconds=0.25, throttle_backoff_max_seconds=1.0)
    client.faults["get_records"] += [
        client_error("LimitExceededException", "GetRecords"),
        client_error("ProvisionedThroughputExceededException", "GetRecords"),
        client_error("LimitExceededException", "GetRecords"),
        client_error("LimitExceededException", "GetRecords"),
    ]
    throttled = [await reader.read() for _ in range(4)]
    assert [r.next_poll_delay_seconds for r in throttled] == [0.25, 0.5, 1.0, 1.0]
    assert all(r.throttled and r.records == [] for r in throttled)

    assert ids((await reader.read()).records) == ["a"]
    client.faults["get_records"].append(client_error("LimitExceededException", "GetRecords"))
    assert (await reader.read()).next_poll_delay_seconds == 0.25


async def test_missing_stream_raises_a_permanent_error(table: Table) -> None:
    reader = DynamoDBShardReader(
        table.streams,
        table.stream_arn.replace(table.name, table.name + "-missing"),
        table.shard_id(),
        StartPosition.trim_horizon(),
        FakeClock(),
    )
    with pytest.raises(StreamNotFoundError) as raised:
        await reader.read()
    assert not raised.value.retryable
    assert table.shard_id() in str(raised.value)


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        (client_error("ValidationException", "GetRecords"), InvalidRequestError, False),
        (client_error("ThrottlingException", "GetRecords"), ThrottledError, True),
        (client_error("InternalFailure", "GetRecords", status=500), ServiceUnavailableError, True),
        (client_error("SomethingNew", "GetRecords", status=503), ServiceUnavailableError, True),
        (client_error("SomethingNew", "GetRecords", status=400), DynamoDBReadError, False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ServiceUnavailableError, True),
    ],
)
def test_errors_are_translated_by_code(
    error: Exception, expected: type[DynamoDBReadError], retryable: bool
) -> None:
    translated = translate_error(error, "GetRecords on arn shard s-1")
    assert type(translated) is expected
    assert translated.retryable is retryable
    assert str(translated).startswith("GetRecords on arn shard s-1")


def test_start_position_requires_a_sequence_number_only_after_one() -> None:
    assert StartPosition.after("12").kind is StartKind.AFTER_SEQUENCE_NUMBER
    with pytest.raises(ValueError, match="sequence_number must be given"):
        StartPosition(StartKind.AFTER_SEQUENCE_NUMBER)
    with pytest.raises(ValueError, match="sequence_number must be omitted"):
        StartPosition(StartKind.LATEST, "12")


def test_settings_reject_a_limit_above_the_api_maximum() -> None:
    with pytest.raises(ValueError, match=r"limit must be 1\.\.1000"):
        DynamoDBReaderSettings(limit=1001)
    with pytest.raises(ValueError, match="throttle_backoff_max_seconds"):
        DynamoDBReaderSettings(throttle_backoff_seconds=2, throttle_backoff_max_seconds=1)


def _sequence_number_of(table: Table, index: int) -> str:
    """The sequence number of the table stream's `index`-th record, read directly."""
    iterator = table.streams.get_shard_iterator(
        StreamArn=table.stream_arn, ShardId=table.shard_id(), ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = table.streams.get_records(ShardIterator=iterator)["Records"]
    return str(records[index]["dynamodb"]["SequenceNumber"])


class CorruptingClient(FaultyClient):
    """The real streams client, except that the second record of each GetRecords response has an
    image a reader cannot decode (the records themselves come from the emulator)."""

    def altered(self, result: Any) -> Any:
        if len(result["Records"]) > 1:
            result["Records"][1]["dynamodb"]["NewImage"] = ["not", "an", "image"]
        return result


async def test_a_record_that_cannot_be_decoded_is_marked_and_reading_moves_past_it(
    table: Table, reader_for: ReaderFactory
) -> None:
    """It affects only itself (issue 10, item 2): its entry keeps its place (sequence number,
    item key), says why, and the records after it are read as usual."""
    table.put("a", "b", "c")
    records = (await reader_for(client=CorruptingClient(table.streams)).read()).records
    assert ids(records) == ["a", "b", "c"]
    reasons = [unreadable_reason(r) for r in records]
    assert reasons[0] is None and reasons[2] is None
    assert reasons[1] is not None and reasons[1].endswith("NewImage must be a mapping, got list")
    assert records[1]["dynamodb"]["SequenceNumber"] > records[0]["dynamodb"]["SequenceNumber"]
