"""Which shards a Kinesis or DynamoDB stream has, and how they descend from each other.

A `ShardLister` returns every shard the service still lists (open and closed) with its parents,
in the service's order (parents before children). The caller builds leases from that lineage and
drains parents before their children; it never decides that a shard has ended from this listing:
`ShardInfo.closed` only repeats that the service reported an EndingSequenceNumber (kinesis-mock
reports a placeholder one), and the reader's `NextShardIterator=None` is what ends a shard.

- Kinesis: ListShards by StreamARN, then by NextToken alone (the service refuses both together).
- DynamoDB Streams: DescribeStream paged by ExclusiveStartShardId / LastEvaluatedShardId.
- A DynamoDB table ARN is resolved to the table's current stream by `resolve_dynamodb_stream_arn`.

Calls are blocking (run them in a thread); botocore failures become the readers' typed errors
(`esm.sources.kinesis.translate_error`, `esm.sources.dynamodb.translate_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from esm.config.arns import parse_event_source_arn
from esm.config.sources import DynamoDBStreamsSource, KinesisSource
from esm.sources import dynamodb, kinesis
from esm.sources.aws_clients import STANDARD, CallBounds, aws_client

# Page size bounds set by the services.
KINESIS_MAX_RESULTS = 10000
DYNAMODB_MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    # Kinesis: ParentShardId then AdjacentParentShardId (a merge); DynamoDB: ParentShardId.
    parent_shard_ids: tuple[str, ...]
    # An EndingSequenceNumber was reported. Informational only: never decides that a shard ended.
    closed: bool

    @classmethod
    def from_response(cls, raw: Mapping[str, Any]) -> ShardInfo:
        """One shard as ListShards (Kinesis) or DescribeStream (DynamoDB Streams) returns it."""
        shard_id = raw.get("ShardId")
        if not isinstance(shard_id, str) or not shard_id:
            raise ValueError(f"shard without a ShardId: {dict(raw)!r}")
        parents: list[str] = []
        for field in ("ParentShardId", "AdjacentParentShardId"):
            parent = raw.get(field)
            if parent is None:
                continue
            if not isinstance(parent, str) or not parent:
                raise ValueError(f"shard {shard_id}: {field} must be a shard id, got {parent!r}")
            parents.append(parent)
        sequence_range = raw.get("SequenceNumberRange") or {}
        if not isinstance(sequence_range, Mapping):
            raise ValueError(
                f"shard {shard_id}: SequenceNumberRange must be a mapping, got {sequence_range!r}"
            )
        return cls(shard_id, tuple(parents), sequence_range.get("EndingSequenceNumber") is not None)


class ShardLister(Protocol):
    def list_shards(self) -> list[ShardInfo]:
        """Every shard the service lists, parents before children; blocking."""
        ...


def _next_page_token(token: Any, previous: str | None, field: str, where: str) -> str | None:
    """The token of the next page, or None after the last; a token that does not move on would
    page forever, so it is an error."""
    if token is None or token == "":
        return None
    if not isinstance(token, str) or token == previous:
        raise ValueError(f"{where}: {field} {token!r} does not advance the paging")
    return token


class KinesisShardLister:
    def __init__(self, client: Any, stream_arn: str, max_results: int = 1000) -> None:
        """`client` is a boto3 "kinesis" client; `max_results` is ListShards' page size."""
        source = parse_event_source_arn(stream_arn)
        if not isinstance(source, KinesisSource) or source.consumer_name is not None:
            raise ValueError(f"KinesisShardLister: expected a Kinesis stream ARN, got {stream_arn!r}")
        if not 1 <= max_results <= KINESIS_MAX_RESULTS:
            raise ValueError(
                f"KinesisShardLister: max_results must be 1-{KINESIS_MAX_RESULTS}, got {max_results}"
            )
        self._client = client
        self._stream_arn = stream_arn
        self._max_results = max_results

    def list_shards(self) -> list[ShardInfo]:
        where = f"ListShards of {self._stream_arn}"
        shards: list[ShardInfo] = []
        request: dict[str, Any] = {"StreamARN": self._stream_arn, "MaxResults": self._max_results}
        token: str | None = None
        while True:
            try:
                response = self._client.list_shards(**request)
            except (ClientError, BotoCoreError) as err:
                raise kinesis.translate_error(err, where) from err
            try:
                shards += [ShardInfo.from_response(raw) for raw in response.get("Shards", [])]
                token = _next_page_token(response.get("NextToken"), token, "NextToken", where)
            except ValueError as err:
                raise kinesis.KinesisReadError(f"{where}: {err}") from err
            if token is None:
                return shards
            # A NextToken names the stream itself: ListShards refuses StreamARN beside it.
            request = {"NextToken": token, "MaxResults": self._max_results}


class DynamoDBShardLister:
    def __init__(self, streams_client: Any, stream_arn: str, page_size: int = DYNAMODB_MAX_PAGE_SIZE) -> None:
        """`streams_client` is a boto3 "dynamodbstreams" client; `page_size` is DescribeStream's
        Limit."""
        source = parse_event_source_arn(stream_arn)
        if not isinstance(source, DynamoDBStreamsSource) or source.stream_label is None:
            raise ValueError(
                f"DynamoDBShardLister: expected a DynamoDB stream ARN (...:table/TABLE/stream/LABEL), "
                f"got {stream_arn!r}"
            )
        if not 1 <= page_size <= DYNAMODB_MAX_PAGE_SIZE:
            raise ValueError(
                f"DynamoDBShardLister: page_size must be 1-{DYNAMODB_MAX_PAGE_SIZE}, got {page_size}"
            )
        self._client = streams_client
        self._stream_arn = stream_arn
        self._page_size = page_size

    def list_shards(self) -> list[ShardInfo]:
        where = f"DescribeStream of {self._stream_arn}"
        shards: list[ShardInfo] = []
        start: str | None = None
        while True:
            description = self._describe(where, start, self._page_size)
            try:
                shards += [ShardInfo.from_response(raw) for raw in description.get("Shards", [])]
                start = _next_page_token(
                    description.get("LastEvaluatedShardId"), start, "LastEvaluatedShardId", where
                )
            except ValueError as err:
                raise dynamodb.DynamoDBReadError(f"{where}: {err}") from err
            if start is None:
                return shards

    def stream_status(self) -> str:
        """StreamStatus: ENABLING, ENABLED, DISABLING or DISABLED."""
        where = f"DescribeStream of {self._stream_arn}"
        status = self._describe(where, None, 1).get("StreamStatus")
        if not isinstance(status, str) or not status:
            raise dynamodb.DynamoDBReadError(f"{where}: the response carries no StreamStatus")
        return status

    def _describe(self, where: str, exclusive_start: str | None, limit: int) -> Mapping[str, Any]:
        request: dict[str, Any] = {"StreamArn": self._stream_arn, "Limit": limit}
        if exclusive_start is not None:
            request["ExclusiveStartShardId"] = exclusive_start
        try:
            response = self._client.describe_stream(**request)
        except (ClientError, BotoCoreError) as err:
            raise dynamodb.translate_error(err, where) from err
        description = response.get("StreamDescription")
        if not isinstance(description, Mapping):
            raise dynamodb.DynamoDBReadError(f"{where}: the response carries no StreamDescription")
        return description


class TableStreamNotEnabledError(dynamodb.StreamNotFoundError):
    """The table exists but has no enabled stream to read."""


def resolve_dynamodb_stream_arn(dynamodb_client: Any, arn: str) -> str:
    """A DynamoDB stream ARN (`...:table/T/stream/LABEL`) is returned as is; a table ARN
    (`...:table/T`) resolves to the table's LatestStreamArn via DescribeTable.

    Raises ValueError for an ARN that names no DynamoDB table, `StreamNotFoundError` when the
    table does not exist and `TableStreamNotEnabledError` when its stream is off (DescribeTable
    keeps the LatestStreamArn of a disabled stream, so StreamSpecification decides)."""
    source = parse_event_source_arn(arn)
    if not isinstance(source, DynamoDBStreamsSource):
        raise ValueError(f"expected a DynamoDB table or stream ARN, got {arn!r}")
    if source.stream_label is not None:
        return arn
    where = f"DescribeTable of table {source.table_name!r} ({arn})"
    try:
        table = dynamodb_client.describe_table(TableName=source.table_name)["Table"]
    except (ClientError, BotoCoreError) as err:
        raise dynamodb.translate_error(err, where) from err
    enabled = (table.get("StreamSpecification") or {}).get("StreamEnabled") is True
    stream_arn = table.get("LatestStreamArn")
    if not enabled or not isinstance(stream_arn, str) or not stream_arn:
        raise TableStreamNotEnabledError(
            f"table {source.table_name!r} ({arn}) has no enabled stream: enable one "
            "(StreamSpecification) or name a stream ARN"
        )
    return stream_arn


StreamSource = KinesisSource | DynamoDBStreamsSource


class StreamArnError(Exception):
    """A DynamoDB table ARN could not be resolved to the table's stream."""


def resolve_stream_arn(source: StreamSource, bounds: CallBounds = STANDARD) -> str:
    """The stream ARN whose lease table the mapping uses, resolved as `esm run` resolves it.

    Blocking: a DynamoDB table ARN costs a DescribeTable call. Raises StreamArnError naming the
    table when it cannot be resolved.
    """
    if isinstance(source, KinesisSource):
        # An enhanced fan-out consumer ARN: esm polls the stream itself (no SubscribeToShard).
        return source.arn.split("/consumer/")[0]
    if source.stream_label is not None:
        return source.arn
    try:
        return resolve_dynamodb_stream_arn(aws_client("dynamodb", source.region, bounds=bounds), source.arn)
    except (dynamodb.DynamoDBReadError, ValueError) as err:
        raise StreamArnError(f"cannot find the stream of table {source.table_name!r}: {err}") from err
