"""The stream failure sink writes Lambda's on-failure record (KinesisBatchInfo) to a real file
destination; an unwritable destination is a FailureSinkError, so the shard retries."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from esm.destinations import open_destination
from esm.dispatch.outcomes import InvokeOutcome
from esm.mappings.stream_failures import StreamFailureSink
from esm.mappings.stream_flavors import KINESIS
from esm.shard.failures import Decision, DecisionKind
from esm.shard.sink import FailureSinkError

from .stream_fakes import STREAM_ARN, entry, sequence

SHARD = "shardId-000000000003"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
GIVEN_UP = Decision(
    DecisionKind.DISCARD, condition="RetryAttemptsExhausted", function_error="Unhandled", invoke_count=3
)


def sink(uri: str) -> StreamFailureSink:
    return StreamFailureSink(
        open_destination(uri), KINESIS, SHARD, STREAM_ARN, FUNCTION_ARN, True, lambda: 1e9
    )


async def test_given_up_records_are_described_with_kinesis_batch_info(tmp_path: Path) -> None:
    path = tmp_path / "failed.jsonl"
    records = [entry(SHARD, n) for n in (4, 5, 6)]

    assert await sink(f"file://{path}").send(
        records, GIVEN_UP, InvokeOutcome.success(b"{}", request_id="r-1")
    )

    [written] = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    info = written["KinesisBatchInfo"]
    assert (info["shardId"], info["streamArn"], info["batchSize"]) == (SHARD, STREAM_ARN, 3)
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequence(4), sequence(6))
    assert written["requestContext"]["requestId"] == "r-1"
    assert written["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert written["requestContext"]["approximateInvokeCount"] == 3
    assert [r["kinesis"]["sequenceNumber"] for r in written["payload"]["Records"]] == [
        sequence(n) for n in (4, 5, 6)
    ]


async def test_an_unwritable_destination_is_retried_by_the_shard(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with pytest.raises(FailureSinkError):
        await sink(f"file://{blocked}/failed.jsonl").send([entry(SHARD, 1)], GIVEN_UP, None)
