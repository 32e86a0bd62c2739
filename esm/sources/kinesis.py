"""Reads one Kinesis shard: a thin wrapper over boto3's GetShardIterator / GetRecords.

`KinesisShardReader.read()` makes one GetRecords call (on the event loop when the client has
`get_records_async`, esm's lean client; in a thread otherwise) and returns a `ReadResult`:
the records as event entries (`esm.events.kinesis.event_record`), MillisBehindLatest, whether the
shard ended (decided ONLY from `NextShardIterator` being None: kinesis-mock reports a placeholder
EndingSequenceNumber on closed shards), the child shards named at the end, and how long the
caller should wait before the next read. Ownership (leases) and checkpoints are the caller's.

Position: the reader remembers the last sequence number it returned. Any new iterator (after
ExpiredIteratorException, or before an iterator gets old) starts AFTER that number, or at the
start position while nothing has been returned yet; a LATEST start becomes AT_TIMESTAMP of when
it was taken, so nothing that arrived meanwhile is skipped. An iterator's age counts from the
last GetRecords (each returns a fresh one), so only a shard left unread for minutes renews. A
checkpoint that retention trimmed resumes at TRIM_HORIZON and says so (`ReadResult.data_lost`).

Errors are `KinesisReadError` subclasses whose `retryable` class attribute tells the caller
whether to try again; boto3 errors are translated by error code (`_ERRORS`), never by message.
Throttling is not an error for the caller: the result is empty and suggests a capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import botocore.exceptions

from esm.events.kinesis import KinesisShardOrigin, event_record
from esm.sources.stream_shards import (
    ChildShard,
    ReadResult,
    StartKind,
    StartPosition,
    StreamReadError,
    warn_unreadable,
)

log = logging.getLogger(__name__)

# -- errors -----------------------------------------------------------------------------------


class KinesisReadError(StreamReadError):
    """A shard read failed. `retryable`: the same read may succeed later."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class KinesisThrottledError(KinesisReadError):
    retryable = True


class KinesisIteratorExpiredError(KinesisReadError):
    retryable = True


class KinesisUnavailableError(KinesisReadError):
    """Transport failures and server-side (5xx) errors."""

    retryable = True


class KinesisInvalidArgumentError(KinesisReadError):
    pass


class KinesisTrimmedDataError(KinesisReadError):
    pass


class KinesisStreamNotFoundError(KinesisReadError):
    pass


class KinesisAccessDeniedError(KinesisReadError):
    pass


_ERRORS: dict[str, type[KinesisReadError]] = {
    "ProvisionedThroughputExceededException": KinesisThrottledError,
    "LimitExceededException": KinesisThrottledError,
    "KMSThrottlingException": KinesisThrottledError,
    "ThrottlingException": KinesisThrottledError,
    "ExpiredIteratorException": KinesisIteratorExpiredError,
    "InvalidArgumentException": KinesisInvalidArgumentError,
    "ValidationException": KinesisInvalidArgumentError,
    "TrimmedDataAccessException": KinesisTrimmedDataError,
    "ResourceNotFoundException": KinesisStreamNotFoundError,
    "ResourceInUseException": KinesisUnavailableError,
    "InternalFailure": KinesisUnavailableError,
    "InternalFailureException": KinesisUnavailableError,
    "ServiceUnavailable": KinesisUnavailableError,
    "ServiceUnavailableException": KinesisUnavailableError,
    "AccessDeniedException": KinesisAccessDeniedError,
    "KMSAccessDeniedException": KinesisAccessDeniedError,
    "KMSDisabledException": KinesisAccessDeniedError,
    "KMSInvalidStateException": KinesisAccessDeniedError,
    "KMSNotFoundException": KinesisAccessDeniedError,
    "KMSOptInRequired": KinesisAccessDeniedError,
}

# A LATEST start resumes this long before it was taken (clock differences between this host and
# the stream): a few records may be read twice, none skipped.
LATEST_RESUME_MARGIN_SECONDS = 1.0

# A trimmed AFTER_SEQUENCE_NUMBER position is refused with one of these.
_TRIMMED_POSITION_ERRORS = (KinesisInvalidArgumentError, KinesisTrimmedDataError)


def translate_error(err: Exception, what: str) -> KinesisReadError:
    """The typed error for a boto3 failure of `what` (e.g. "GetRecords on shardId-0 of s")."""
    if isinstance(err, botocore.exceptions.ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        kind = _ERRORS.get(code)
        if kind is None:
            kind = KinesisUnavailableError if status >= 500 else KinesisReadError
        return kind(f"{what} failed with {code or 'no error code'} (HTTP {status}): {err}", code)
    if isinstance(err, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        return KinesisUnavailableError(f"{what} could not reach Kinesis: {err}")
    return KinesisReadError(f"{what} failed: {err!r}")


# -- positions, settings, results ---------------------------------------------------------------


def _iterator_args(position: StartPosition) -> dict[str, Any]:
    """GetShardIterator's arguments for a start position."""
    args: dict[str, Any] = {"ShardIteratorType": position.kind.value}
    if position.sequence_number is not None:
        args["StartingSequenceNumber"] = position.sequence_number
    if position.timestamp is not None:
        args["Timestamp"] = datetime.fromtimestamp(position.timestamp, tz=UTC)
    return args


@dataclass(frozen=True)
class KinesisReaderSettings:
    # GetRecords Limit (Kinesis allows 1-10000).
    limit: int = 10000
    # Suggested wait when the reader has caught up (Lambda polls a shard once a second).
    idle_poll_interval_seconds: float = 0.2
    # Throttled reads wait this long, doubling per consecutive throttle up to the cap.
    throttle_backoff_initial_seconds: float = 0.5
    throttle_backoff_max_seconds: float = 10.0
    # Iterators expire after 300 s; one older than this is replaced before it is used.
    iterator_max_age_seconds: float = 270.0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10000:
            raise ValueError(f"KinesisReaderSettings.limit must be 1-10000, got {self.limit}")
        for name in (
            "idle_poll_interval_seconds",
            "throttle_backoff_initial_seconds",
            "throttle_backoff_max_seconds",
            "iterator_max_age_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"KinesisReaderSettings.{name} must be >= 0, got {getattr(self, name)}")


class KinesisClient(Protocol):
    """The boto3 "kinesis" client calls the reader makes."""

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_records(self, **kwargs: Any) -> dict[str, Any]: ...
    def describe_stream_summary(self, **kwargs: Any) -> dict[str, Any]: ...


# -- the reader ---------------------------------------------------------------------------------


class KinesisShardReader:
    def __init__(
        self,
        client: KinesisClient,
        stream: str,
        shard_id: str,
        start: StartPosition,
        clock: Callable[[], float],
        settings: KinesisReaderSettings | None = None,
        invoke_identity_arn: str = "",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`stream` is a name or an ARN; `clock` is monotonic seconds (iterator age); `wall_clock`
        epoch seconds (where a LATEST start resumes)."""
        self._client = client
        self._stream_arg = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        self._stream = stream
        self._shard_id = shard_id
        self._start = start
        self._clock = clock
        self._wall_clock = wall_clock
        self._settings = settings or KinesisReaderSettings()
        self._invoke_identity_arn = invoke_identity_arn
        self._origin: KinesisShardOrigin | None = None
        self._iterator: str | None = None
        self._iterator_taken_at = 0.0
        self._last_sequence: str | None = None
        self._ended: tuple[ChildShard, ...] | None = None  # child shards once the shard ended
        self._throttle_streak = 0
        self._data_lost = False
        self._busy = threading.Lock()

    @property
    def last_sequence_number(self) -> str | None:
        """The sequence number of the last record returned (None before the first)."""
        return self._last_sequence

    async def read(self) -> ReadResult:
        """One GetRecords call. Raises a `KinesisReadError` except for throttling."""
        return await self.read_in(None)

    async def read_in(self, executor: Executor | None) -> ReadResult:
        """`read()` with its blocking calls on `executor` (None: asyncio's default). The usual
        read (an iterator in hand, a client that has `get_records_async`) runs on the event
        loop instead, without a thread."""
        get_records_async = getattr(self._client, "get_records_async", None)
        loop = asyncio.get_running_loop()
        if (
            get_records_async is None
            or self._ended is not None
            or self._origin is None
            or self._iterator is None
            or self._iterator_is_old()
        ):
            return await loop.run_in_executor(executor, self.read_blocking)
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"shard {self._shard_id}: read() called while another read runs")
        try:
            try:
                response = await get_records_async(ShardIterator=self._iterator, Limit=self._settings.limit)
            except Exception as err:
                error = translate_error(err, f"GetRecords on {self._where()}")
                if isinstance(error, KinesisThrottledError):
                    return self._throttled()
                if not isinstance(error, KinesisIteratorExpiredError):
                    raise error from err
                self._iterator = None  # renewed (and read) by the blocking path below
            else:
                self._throttle_streak = 0
                return self._result(response, self._origin)
        finally:
            self._busy.release()
        return await loop.run_in_executor(executor, self.read_blocking)

    def read_blocking(self) -> ReadResult:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(f"shard {self._shard_id}: read() called while another read runs")
        try:
            return self._read()
        finally:
            self._busy.release()

    def _read(self) -> ReadResult:
        if self._ended is not None:
            return ReadResult(records=[], shard_ended=True, child_shards=self._ended)
        try:
            origin = self._shard_origin()
            if self._iterator is None or self._iterator_is_old():
                self._renew_iterator()
            try:
                response = self._get_records()
            except KinesisIteratorExpiredError:
                self._renew_iterator()
                response = self._get_records()
        except KinesisThrottledError:
            return self._throttled()
        self._throttle_streak = 0
        return self._result(response, origin)

    def _result(self, response: dict[str, Any], origin: KinesisShardOrigin) -> ReadResult:
        raw = response.get("Records") or []
        read_at = self._wall_clock()
        records = [event_record(r, origin, read_at) for r in raw]
        warn_unreadable(records, log)
        if raw:
            self._last_sequence = raw[-1]["SequenceNumber"]
        self._iterator = response.get("NextShardIterator")
        # Each NextShardIterator is valid for another 5 minutes: its age counts from now.
        self._iterator_taken_at = self._clock()
        behind = response.get("MillisBehindLatest")
        data_lost, self._data_lost = self._data_lost, False
        if self._iterator is None:
            self._ended = tuple(
                ChildShard(c["ShardId"], tuple(c.get("ParentShards", ())))
                for c in response.get("ChildShards") or ()
            )
            return ReadResult(
                records=records,
                millis_behind_latest=behind,
                shard_ended=True,
                child_shards=self._ended,
                data_lost=data_lost,
            )
        more_waiting = len(raw) >= self._settings.limit or (behind is not None and behind > 0)
        delay = 0.0 if more_waiting else self._settings.idle_poll_interval_seconds
        return ReadResult(
            records=records, millis_behind_latest=behind, next_poll_delay_seconds=delay, data_lost=data_lost
        )

    def _throttled(self) -> ReadResult:
        s = self._settings
        growth = 2 ** min(self._throttle_streak, 30)  # bounded: the cap is reached long before
        delay = min(s.throttle_backoff_max_seconds, s.throttle_backoff_initial_seconds * growth)
        self._throttle_streak += 1
        data_lost, self._data_lost = self._data_lost, False
        return ReadResult(records=[], next_poll_delay_seconds=delay, data_lost=data_lost, throttled=True)

    def _iterator_is_old(self) -> bool:
        return self._clock() - self._iterator_taken_at > self._settings.iterator_max_age_seconds

    def _renew_iterator(self) -> None:
        """A new iterator at the reader's own position (see the module docstring)."""
        position = StartPosition.after(self._last_sequence) if self._last_sequence else self._start
        self._iterator = None
        try:
            self._iterator = self._get_iterator(position)
        except _TRIMMED_POSITION_ERRORS:
            if position.kind is not StartKind.AFTER_SEQUENCE_NUMBER:
                raise
            # Retention removed the checkpoint: what is left starts at TRIM_HORIZON.
            self._start = StartPosition.trim_horizon()
            self._last_sequence = None
            self._data_lost = True
            self._iterator = self._get_iterator(self._start)

    def _get_iterator(self, position: StartPosition) -> str:
        self._iterator_taken_at = self._clock()
        requested_at = self._wall_clock()
        try:
            response = self._client.get_shard_iterator(
                **self._stream_arg, ShardId=self._shard_id, **_iterator_args(position)
            )
        except Exception as err:
            raise translate_error(err, f"GetShardIterator {position.kind.value} on {self._where()}") from err
        if position.kind is StartKind.LATEST:
            # Should this iterator expire before it returned a record, LATEST again would skip
            # what arrived meanwhile; resuming at the time it was asked for does not.
            self._start = StartPosition.at_timestamp(requested_at - LATEST_RESUME_MARGIN_SECONDS)
        return str(response["ShardIterator"])

    def _get_records(self) -> dict[str, Any]:
        try:
            return self._client.get_records(ShardIterator=self._iterator, Limit=self._settings.limit)
        except Exception as err:
            raise translate_error(err, f"GetRecords on {self._where()}") from err

    def _shard_origin(self) -> KinesisShardOrigin:
        if self._origin is None:
            arn = self._stream if self._stream.startswith("arn:") else self._describe_arn()
            region = arn.split(":")[3]
            self._origin = KinesisShardOrigin(arn, self._shard_id, region, self._invoke_identity_arn)
        return self._origin

    def _describe_arn(self) -> str:
        try:
            summary = self._client.describe_stream_summary(StreamName=self._stream)
        except Exception as err:
            raise translate_error(err, f"DescribeStreamSummary of {self._stream}") from err
        return str(summary["StreamDescriptionSummary"]["StreamARN"])

    def _where(self) -> str:
        return f"{self._shard_id} of {self._stream}"
