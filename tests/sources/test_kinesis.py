"""KinesisShardReader against kinesis-mock: order across reads, shard end with children, iterator
expiry and trimmed-checkpoint recovery (faults injected by a thin client wrapper while the
records still come from the emulator), throttling backoff, start positions."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from stream_services import KinesisMock, reader_client, wait_stream_active

from esm.events.unreadable import unreadable_reason
from esm.sources.kinesis import (
    LATEST_RESUME_MARGIN_SECONDS,
    KinesisAccessDeniedError,
    KinesisInvalidArgumentError,
    KinesisReadError,
    KinesisReaderSettings,
    KinesisShardReader,
    KinesisStreamNotFoundError,
    KinesisThrottledError,
    KinesisUnavailableError,
    ReadResult,
    StartKind,
    StartPosition,
    translate_error,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_error(code: str, operation: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class FaultyClient:
    """The real client, except that queued errors are raised (once each) by the named call."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.faults: dict[str, list[botocore.exceptions.ClientError]] = {
            "get_records": [],
            "get_shard_iterator": [],
        }
        self.iterator_calls: list[dict[str, Any]] = []
        if hasattr(real, "get_records_async"):  # the lean client: the readers' usual path
            self.get_records_async = self._get_records_async

    async def _get_records_async(self, **kwargs: Any) -> dict[str, Any]:
        if self.faults["get_records"]:
            raise self.faults["get_records"].pop(0)
        result: dict[str, Any] = await self.real.get_records_async(**kwargs)
        return result

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.iterator_calls.append(kwargs)
        if self.faults["get_shard_iterator"]:
            raise self.faults["get_shard_iterator"].pop(0)
        result: dict[str, Any] = self.real.get_shard_iterator(**kwargs)
        return result

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        if self.faults["get_records"]:
            raise self.faults["get_records"].pop(0)
        result: dict[str, Any] = self.real.get_records(**kwargs)
        return result

    def describe_stream_summary(self, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.real.describe_stream_summary(**kwargs)
        return result


@pytest.fixture(params=["lean", "botocore"])
def client(request: pytest.FixtureRequest, kinesis_mock: KinesisMock, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The readers' client as the daemon builds it, with either GetRecords transport."""
    return reader_client(monkeypatch, kinesis_mock.endpoint, "kinesis", request.param)


@pytest.fixture
def stream(client: Any) -> Iterator[tuple[str, str]]:
    """A fresh one-shard stream: (name, shard id)."""
    name = f"s-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=1)
    wait_stream_active(client, name)
    [shard] = client.list_shards(StreamName=name)["Shards"]
    yield name, shard["ShardId"]
    client.delete_stream(StreamName=name)


def put(client: Any, name: str, count: int, first: int = 0) -> list[str]:
    """Writes records b"0", b"1", ... one by one (in order); returns their sequence numbers."""
    return [
        client.put_record(StreamName=name, Data=str(n).encode(), PartitionKey=f"k{n}")["SequenceNumber"]
        for n in range(first, first + count)
    ]


def datas(records: list[dict[str, Any]]) -> list[str]:
    return [base64.b64decode(r["kinesis"]["data"]).decode() for r in records]


async def read_until(reader: KinesisShardReader, count: int, max_reads: int = 20) -> list[ReadResult]:
    results: list[ReadResult] = []
    for _ in range(max_reads):
        results.append(await reader.read())
        if sum(len(r.records) for r in results) >= count or results[-1].shard_ended:
            return results
    raise AssertionError(f"fewer than {count} records after {max_reads} reads")


def all_records(results: list[ReadResult]) -> list[dict[str, Any]]:
    return [record for result in results for record in result.records]


async def test_reads_records_in_order_across_several_calls(client: Any, stream: Any) -> None:
    name, shard_id = stream
    sequences = put(client, name, 25)
    arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    reader = KinesisShardReader(
        client,
        arn,
        shard_id,
        StartPosition.trim_horizon(),
        FakeClock(),
        KinesisReaderSettings(limit=10, idle_poll_interval_seconds=0.3),
        invoke_identity_arn="arn:role",
    )

    results = await read_until(reader, 25)

    assert [len(r.records) for r in results] == [10, 10, 5]
    records = all_records(results)
    assert datas(records) == [str(n) for n in range(25)]
    assert [r["kinesis"]["sequenceNumber"] for r in records] == sequences
    assert records[0]["eventID"] == f"{shard_id}:{sequences[0]}"
    assert records[0]["eventSourceARN"] == arn
    assert records[0]["awsRegion"] == "us-east-1"
    assert records[0]["invokeIdentityArn"] == "arn:role"
    # Full pages ask for the next read at once; the last, short one has caught up.
    assert [r.next_poll_delay_seconds for r in results] == [0.0, 0.0, 0.3]
    assert results[-1].millis_behind_latest == 0
    assert not any(r.shard_ended or r.data_lost or r.throttled for r in results)
    assert reader.last_sequence_number == sequences[-1]

    nothing = await reader.read()
    assert nothing.records == [] and nothing.next_poll_delay_seconds == 0.3
    later = put(client, name, 2, first=25)
    assert [r["kinesis"]["sequenceNumber"] for r in (await reader.read()).records] == later


async def test_stream_name_is_resolved_to_its_arn_for_the_events(client: Any, stream: Any) -> None:
    name, shard_id = stream
    put(client, name, 1)
    reader = KinesisShardReader(client, name, shard_id, StartPosition.trim_horizon(), FakeClock())
    [record] = (await reader.read()).records
    assert record["eventSourceARN"].startswith("arn:aws:kinesis:us-east-1:")
    assert record["eventSourceARN"].endswith(f":stream/{name}")


async def test_parent_shard_ends_after_a_split_naming_its_children(client: Any, stream: Any) -> None:
    name, parent = stream
    before = put(client, name, 5)
    client.split_shard(StreamName=name, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    wait_stream_active(client, name)
    children = {s["ShardId"] for s in client.list_shards(StreamName=name)["Shards"]} - {parent}
    assert len(children) == 2
    put(client, name, 3, first=5)  # goes to the children, never to the closed parent
    reader = KinesisShardReader(
        client, name, parent, StartPosition.trim_horizon(), FakeClock(), KinesisReaderSettings(limit=2)
    )

    results = await read_until(reader, 10**6)

    assert [r["kinesis"]["sequenceNumber"] for r in all_records(results)] == before
    assert [r.shard_ended for r in results] == [False] * (len(results) - 1) + [True]
    end = results[-1]
    assert end.next_poll_delay_seconds == 0.0
    assert {c.shard_id for c in end.child_shards} == children
    assert all(c.parent_shard_ids == (parent,) for c in end.child_shards)
    again = await reader.read()
    assert again.shard_ended and again.records == [] and again.child_shards == end.child_shards


async def test_expired_iterator_resumes_after_the_last_returned_record(client: Any, stream: Any) -> None:
    name, shard_id = stream
    sequences = put(client, name, 6)
    faulty = FaultyClient(client)
    reader = KinesisShardReader(
        faulty, name, shard_id, StartPosition.trim_horizon(), FakeClock(), KinesisReaderSettings(limit=3)
    )
    first = await reader.read()
    faulty.faults["get_records"].append(client_error("ExpiredIteratorException", "GetRecords"))

    second = await reader.read()

    assert datas(first.records + second.records) == [str(n) for n in range(6)]
    assert [c["ShardIteratorType"] for c in faulty.iterator_calls] == [
        "TRIM_HORIZON",
        "AFTER_SEQUENCE_NUMBER",
    ]
    assert faulty.iterator_calls[1]["StartingSequenceNumber"] == sequences[2]


async def test_expired_iterator_before_any_record_uses_the_start_position(client: Any, stream: Any) -> None:
    name, shard_id = stream
    checkpoint = put(client, name, 4)[1]
    faulty = FaultyClient(client)
    faulty.faults["get_records"].append(client_error("ExpiredIteratorException", "GetRecords"))
    reader = KinesisShardReader(faulty, name, shard_id, StartPosition.after(checkpoint), FakeClock())

    result = await reader.read()

    assert datas(result.records) == ["2", "3"]
    assert [c.get("StartingSequenceNumber") for c in faulty.iterator_calls] == [checkpoint, checkpoint]


async def test_expired_latest_iterator_resumes_where_latest_was_taken(client: Any, stream: Any) -> None:
    """LATEST again would skip records put while the iterator sat unused; AT_TIMESTAMP does not."""
    name, shard_id = stream
    put(client, name, 1)
    time.sleep(LATEST_RESUME_MARGIN_SECONDS + 0.2)  # the old record predates the resume margin
    faulty = FaultyClient(client)
    reader = KinesisShardReader(faulty, name, shard_id, StartPosition.latest(), FakeClock())
    assert (await reader.read()).records == []
    put(client, name, 2, first=1)
    faulty.faults["get_records"].append(client_error("ExpiredIteratorException", "GetRecords"))

    result = await reader.read()

    assert datas(result.records) == ["1", "2"]
    assert [c["ShardIteratorType"] for c in faulty.iterator_calls] == ["LATEST", "AT_TIMESTAMP"]


async def test_an_old_iterator_is_replaced_before_it_expires(client: Any, stream: Any) -> None:
    name, shard_id = stream
    sequences = put(client, name, 4)
    faulty = FaultyClient(client)
    clock = FakeClock()
    reader = KinesisShardReader(
        faulty,
        name,
        shard_id,
        StartPosition.trim_horizon(),
        clock,
        KinesisReaderSettings(limit=2, iterator_max_age_seconds=270),
    )
    first = await reader.read()
    clock.now += 200
    second = await reader.read()  # young enough: the iterator GetRecords returned is used
    assert len(faulty.iterator_calls) == 1
    clock.now += 271
    put(client, name, 1, first=4)
    third = await reader.read()

    assert datas(first.records + second.records + third.records) == ["0", "1", "2", "3", "4"]
    assert faulty.iterator_calls[1]["StartingSequenceNumber"] == sequences[3]


async def test_resumes_after_a_checkpoint_sequence_number(client: Any, stream: Any) -> None:
    name, shard_id = stream
    sequences = put(client, name, 8)
    reader = KinesisShardReader(client, name, shard_id, StartPosition.after(sequences[4]), FakeClock())
    result = await reader.read()
    assert datas(result.records) == ["5", "6", "7"]
    assert not result.data_lost


async def test_trimmed_checkpoint_resumes_at_trim_horizon_and_reports_data_loss(
    client: Any, stream: Any
) -> None:
    name, shard_id = stream
    sequences = put(client, name, 3)
    faulty = FaultyClient(client)
    faulty.faults["get_shard_iterator"].append(client_error("InvalidArgumentException", "GetShardIterator"))
    reader = KinesisShardReader(faulty, name, shard_id, StartPosition.after(sequences[1]), FakeClock())

    result = await reader.read()

    assert result.data_lost
    assert datas(result.records) == ["0", "1", "2"]
    assert [c["ShardIteratorType"] for c in faulty.iterator_calls] == [
        "AFTER_SEQUENCE_NUMBER",
        "TRIM_HORIZON",
    ]
    assert not (await reader.read()).data_lost  # reported once


async def test_invalid_start_other_than_a_checkpoint_is_an_error(client: Any, stream: Any) -> None:
    name, shard_id = stream
    faulty = FaultyClient(client)
    faulty.faults["get_shard_iterator"].append(client_error("InvalidArgumentException", "GetShardIterator"))
    reader = KinesisShardReader(faulty, name, shard_id, StartPosition.latest(), FakeClock())
    with pytest.raises(KinesisInvalidArgumentError, match="GetShardIterator LATEST on shardId") as raised:
        await reader.read()
    assert not raised.value.retryable


async def test_throttling_backs_off_with_a_cap_and_keeps_the_position(client: Any, stream: Any) -> None:
    name, shard_id = stream
    put(client, name, 4)
    faulty = FaultyClient(client)
    reader = KinesisShardReader(
        faulty,
        name,
        shard_id,
        StartPosition.trim_horizon(),
        FakeClock(),
        KinesisReaderSettings(
            limit=2, throttle_backoff_initial_seconds=0.5, throttle_backoff_max_seconds=1.5
        ),
    )
    first = await reader.read()
    faulty.faults["get_records"] += [
        client_error("ProvisionedThroughputExceededException", "GetRecords"),
        client_error("LimitExceededException", "GetRecords"),
        client_error("ProvisionedThroughputExceededException", "GetRecords"),
    ]
    throttled = [await reader.read() for _ in range(3)]
    second = await reader.read()
    faulty.faults["get_records"].append(client_error("ProvisionedThroughputExceededException", "GetRecords"))
    after_success = await reader.read()

    assert [(r.throttled, r.records, r.next_poll_delay_seconds) for r in throttled] == [
        (True, [], 0.5),
        (True, [], 1.0),
        (True, [], 1.5),
    ]
    assert datas(first.records + second.records) == ["0", "1", "2", "3"]
    assert after_success.throttled and after_success.next_poll_delay_seconds == 0.5
    assert len(faulty.iterator_calls) == 1


async def test_latest_skips_earlier_records(client: Any, stream: Any) -> None:
    name, shard_id = stream
    put(client, name, 2)
    reader = KinesisShardReader(client, name, shard_id, StartPosition.latest(), FakeClock())
    assert (await reader.read()).records == []
    put(client, name, 1, first=2)
    assert datas((await reader.read()).records) == ["2"]


async def test_at_timestamp_starts_at_records_from_that_time(client: Any, stream: Any) -> None:
    name, shard_id = stream
    put(client, name, 2)
    time.sleep(0.05)  # arrival times are milliseconds: the boundary needs a gap between writes
    arn = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    trim = KinesisShardReader(client, arn, shard_id, StartPosition.trim_horizon(), FakeClock())
    boundary = (await trim.read()).records[-1]["kinesis"]["approximateArrivalTimestamp"] + 0.02
    put(client, name, 2, first=2)
    reader = KinesisShardReader(client, name, shard_id, StartPosition.at_timestamp(boundary), FakeClock())
    assert datas((await reader.read()).records) == ["2", "3"]


async def test_unknown_stream_is_a_permanent_error(client: Any) -> None:
    reader = KinesisShardReader(
        client,
        "arn:aws:kinesis:us-east-1:000000000000:stream/missing-stream",
        "shardId-000000000000",
        StartPosition.trim_horizon(),
        FakeClock(),
    )
    with pytest.raises(KinesisStreamNotFoundError) as raised:
        await reader.read()
    assert not raised.value.retryable and raised.value.code == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("code", "status", "kind", "retryable"),
    [
        ("ProvisionedThroughputExceededException", 400, KinesisThrottledError, True),
        ("LimitExceededException", 400, KinesisThrottledError, True),
        ("ResourceNotFoundException", 400, KinesisStreamNotFoundError, False),
        ("KMSAccessDeniedException", 400, KinesisAccessDeniedError, False),
        ("InternalFailure", 500, KinesisUnavailableError, True),
        ("SomethingNew", 503, KinesisUnavailableError, True),
        ("SomethingNew", 400, KinesisReadError, False),
    ],
)
def test_client_errors_are_translated_by_code(
    code: str, status: int, kind: type[KinesisReadError], retryable: bool
) -> None:
    error = translate_error(client_error(code, "GetRecords", status), "GetRecords on shardId-1 of s")
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.code == code
    assert "GetRecords on shardId-1 of s" in str(error)


def test_transport_errors_are_retryable() -> None:
    error = translate_error(
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), "GetRecords"
    )
    assert isinstance(error, KinesisUnavailableError) and error.retryable


@pytest.mark.parametrize(
    "make",
    [
        lambda: StartPosition(StartKind.AFTER_SEQUENCE_NUMBER),
        lambda: StartPosition(StartKind.TRIM_HORIZON, sequence_number="1"),
        lambda: StartPosition(StartKind.AT_TIMESTAMP),
        lambda: StartPosition(StartKind.LATEST, timestamp=1.0),
        lambda: KinesisReaderSettings(limit=0),
        lambda: KinesisReaderSettings(idle_poll_interval_seconds=-1),
    ],
)
def test_invalid_positions_and_settings_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


class CorruptingClient(FaultyClient):
    """The real client, except that the record at `index` of each GetRecords response has its
    Data replaced (a response a reader cannot decode, from the emulator's real records)."""

    def __init__(self, real: Any, index: int) -> None:
        super().__init__(real)
        self.index = index

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        result = super().get_records(**kwargs)
        if len(result["Records"]) > self.index:
            result["Records"][self.index]["Data"] = 12345
        return result


async def test_a_record_that_cannot_be_decoded_is_marked_and_reading_moves_past_it(
    client: Any, stream: Any
) -> None:
    """It affects only itself (issue 10, item 2): its entry keeps its place, says why, and the
    records after it are read as usual."""
    name, shard_id = stream
    sequences = put(client, name, 5)
    reader = KinesisShardReader(
        CorruptingClient(client, 2),
        name,
        shard_id,
        StartPosition.trim_horizon(),
        FakeClock(),
        wall_clock=lambda: 7.0,
    )
    records = (await reader.read()).records
    assert [r["kinesis"]["sequenceNumber"] for r in records] == sequences
    assert [unreadable_reason(r) for r in records] == [
        None,
        None,
        f"Kinesis record {shard_id}:{sequences[2]}: Data must be bytes or base64 text, got int",
        None,
        None,
    ]
    assert records[2]["kinesis"]["partitionKey"] == "k2"
    assert datas(records[:2] + records[3:]) == ["0", "1", "3", "4"]
    assert reader.last_sequence_number == sequences[-1]
