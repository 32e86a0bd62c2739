"""One DynamoDB Streams shard, read with boto3's `dynamodbstreams` client.

A thin, faithful wrapper: each `read()` is one GetRecords call (plus a GetShardIterator when the
reader needs a new iterator), on the event loop when the client has `get_records_async` (esm's
lean client) and in a thread otherwise. It owns nothing: the shard consumer that holds the
shard's lease decides when to read and what to checkpoint.

Position: the reader remembers the sequence number of the last record it returned. Whenever it
needs a new iterator (the first read, an expired iterator, an iterator older than
`iterator_max_age_seconds`) it asks for one AFTER that sequence number, or at the start position
when nothing was returned yet - never at the mapping's StartingPosition again.

- ExpiredIteratorException: a new iterator from the position above, and the read is retried once.
- TrimmedDataAccessException while reading after a checkpoint: the records past it are gone; the
  reader goes on at TRIM_HORIZON and says so (`ReadResult.data_lost`).
- LimitExceededException and other throttles: no records, a capped exponential backoff as the
  suggested delay.
- The shard has ended exactly when GetRecords returns no NextShardIterator (that last page may
  still carry records).
Other failures raise a `DynamoDBReadError` subclass, chosen from the error code by `_ERRORS`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from esm.events.dynamodb import event_record
from esm.sources.stream_shards import ReadResult, StartKind, StartPosition, StreamReadError, warn_unreadable

log = logging.getLogger(__name__)

# GetRecords' own upper bound for Limit.
MAX_LIMIT = 1000


class StreamsClient(Protocol):
    """The two calls of boto3's `dynamodbstreams` client the reader makes."""

    def get_shard_iterator(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_records(self, **kwargs: Any) -> Mapping[str, Any]: ...


# -- errors -----------------------------------------------------------------------------------


class DynamoDBReadError(StreamReadError):
    """Reading the shard failed. `retryable`: the same read may succeed later."""


class StreamNotFoundError(DynamoDBReadError):
    """The stream or shard does not exist (ResourceNotFoundException)."""


class InvalidRequestError(DynamoDBReadError):
    """The service rejected the request (ValidationException), e.g. a sequence number that is
    not in this shard."""


class AccessDeniedError(DynamoDBReadError):
    """The credentials may not read this stream."""


class ThrottledError(DynamoDBReadError):
    """Too many requests on the shard or account; `read()` turns this into a backoff."""

    retryable = True


class IteratorExpiredError(DynamoDBReadError):
    """The shard iterator is older than 15 minutes; `read()` gets a new one."""

    retryable = True


class DataTrimmedError(DynamoDBReadError):
    """The requested position is past the stream's 24 h retention; `read()` resumes at
    TRIM_HORIZON."""

    retryable = True


class ServiceUnavailableError(DynamoDBReadError):
    """A server-side failure or no connection to the service."""

    retryable = True


# Error code -> error type. Codes only: messages are for people.
_ERRORS: Mapping[str, type[DynamoDBReadError]] = {
    "ResourceNotFoundException": StreamNotFoundError,
    "ValidationException": InvalidRequestError,
    "AccessDeniedException": AccessDeniedError,
    "UnrecognizedClientException": AccessDeniedError,
    "LimitExceededException": ThrottledError,
    "ProvisionedThroughputExceededException": ThrottledError,
    "ThrottlingException": ThrottledError,
    "RequestLimitExceeded": ThrottledError,
    "ExpiredIteratorException": IteratorExpiredError,
    "TrimmedDataAccessException": DataTrimmedError,
    "InternalServerError": ServiceUnavailableError,
    "InternalFailure": ServiceUnavailableError,
    "ServiceUnavailable": ServiceUnavailableError,
}


def translate_error(err: Exception, where: str) -> DynamoDBReadError:
    """The reader's error for a botocore failure of the call described by `where`."""
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        kind = _ERRORS.get(code)
        if kind is None:
            # An unlisted code: a 5xx is the service's trouble and worth retrying.
            kind = ServiceUnavailableError if status >= 500 else DynamoDBReadError
        return kind(f"{where}: {code or 'unknown error'} (HTTP {status}): {error.get('Message', '')}")
    if isinstance(err, (ConnectionError, HTTPClientError)):
        return ServiceUnavailableError(f"{where}: {type(err).__name__}: {err}")
    return DynamoDBReadError(f"{where}: {type(err).__name__}: {err}")


# -- positions, settings, results ---------------------------------------------------------------


@dataclass(frozen=True)
class DynamoDBReaderSettings:
    # Records per GetRecords call (1..1000).
    limit: int = MAX_LIMIT
    # Suggested delay after a page that was not full: the shard is caught up.
    idle_delay_seconds: float = 0.2
    # Suggested delay after the first throttle in a row; doubles per further throttle up to the cap.
    throttle_backoff_seconds: float = 0.25
    throttle_backoff_max_seconds: float = 5.0
    # Iterators expire after 15 minutes; one unused this long is replaced before it is used.
    iterator_max_age_seconds: float = 14 * 60

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}, got {self.limit}")
        for name in ("idle_delay_seconds", "throttle_backoff_seconds", "iterator_max_age_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.throttle_backoff_max_seconds < self.throttle_backoff_seconds:
            raise ValueError(
                f"throttle_backoff_max_seconds ({self.throttle_backoff_max_seconds}) must be at "
                f"least throttle_backoff_seconds ({self.throttle_backoff_seconds})"
            )


# -- the reader ---------------------------------------------------------------------------------


class DynamoDBShardReader:
    """Reads one shard; one `read()` at a time."""

    def __init__(
        self,
        client: StreamsClient,
        stream_arn: str,
        shard_id: str,
        start: StartPosition,
        clock: Callable[[], float],
        settings: DynamoDBReaderSettings | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` is monotonic seconds (iterator age); `wall_clock` epoch seconds (the stand-in
        creation time of a record that lacks a readable one)."""
        if start.kind is StartKind.AT_TIMESTAMP:
            raise ValueError("DynamoDB Streams cannot start AT_TIMESTAMP (TRIM_HORIZON or LATEST)")
        self._client = client
        self._stream_arn = stream_arn
        self._shard_id = shard_id
        self._start = start
        self._clock = clock
        self._wall_clock = wall_clock
        self._settings = settings or DynamoDBReaderSettings()
        self._last_sequence_number: str | None = None
        self._iterator: str | None = None
        self._iterator_obtained_at = 0.0
        self._ended = False
        self._throttles_in_a_row = 0
        self._reading = False

    @property
    def last_sequence_number(self) -> str | None:
        """The sequence number of the last record returned, if any."""
        return self._last_sequence_number

    @property
    def shard_ended(self) -> bool:
        return self._ended

    async def read(self) -> ReadResult:
        """One GetRecords call (see `read_in`)."""
        if self._reading:
            raise RuntimeError(f"shard {self._shard_id}: read() called while another read is running")
        self._reading = True
        try:
            return await self.read_in(None)
        finally:
            self._reading = False

    async def read_in(self, executor: Executor | None) -> ReadResult:
        """`read()` with its blocking calls on `executor` (None: asyncio's default). The usual
        read (an iterator in hand, a client that has `get_records_async`) runs on the event
        loop instead, without a thread."""
        get_records_async = getattr(self._client, "get_records_async", None)
        loop = asyncio.get_running_loop()
        if get_records_async is None or self._ended or self._iterator is None or self._iterator_too_old():
            return await loop.run_in_executor(executor, self.read_blocking)
        try:
            response = await get_records_async(ShardIterator=self._iterator, Limit=self._settings.limit)
        except (ClientError, BotoCoreError) as err:
            error = translate_error(err, f"GetRecords on {self._stream_arn} shard {self._shard_id}")
            if isinstance(error, ThrottledError):
                self._throttles_in_a_row += 1
                return ReadResult(records=[], throttled=True, next_poll_delay_seconds=self._throttle_delay())
            if isinstance(error, IteratorExpiredError):
                self._iterator = None  # the blocking path renews it, and reads
                return await loop.run_in_executor(executor, self.read_blocking)
            if isinstance(error, DataTrimmedError) and (
                self._resume_position().kind is StartKind.AFTER_SEQUENCE_NUMBER
            ):
                self._restart_at_trim_horizon()  # as `_read_once` does
                result = await loop.run_in_executor(executor, self.read_blocking)
                return dataclasses.replace(result, data_lost=True)
            raise error from err
        return self._accept(response, data_lost=False)

    def read_blocking(self) -> ReadResult:
        """`read()` on the calling thread."""
        if self._ended:
            return ReadResult(records=[], shard_ended=True)
        try:
            return self._read_once()
        except ThrottledError:
            self._throttles_in_a_row += 1
            return ReadResult(records=[], throttled=True, next_poll_delay_seconds=self._throttle_delay())

    def _read_once(self) -> ReadResult:
        data_lost = False
        for attempt in range(2):
            try:
                if self._iterator is None or self._iterator_too_old():
                    data_lost |= self._renew_iterator()
                response = self._get_records()
            except IteratorExpiredError:
                self._iterator = None
                if attempt == 1:
                    raise
                continue
            except DataTrimmedError:
                if self._resume_position().kind is not StartKind.AFTER_SEQUENCE_NUMBER:
                    raise  # already at TRIM_HORIZON or LATEST: retrying would loop
                self._restart_at_trim_horizon()
                data_lost = True
                continue
            return self._accept(response, data_lost)
        raise AssertionError("unreachable: the loop returns or raises")

    def _accept(self, response: Mapping[str, Any], data_lost: bool) -> ReadResult:
        self._throttles_in_a_row = 0
        raw = response.get("Records") or []
        read_at = self._wall_clock()
        records = [event_record(record, self._stream_arn, read_at) for record in raw]
        warn_unreadable(records, log)
        if records:
            self._last_sequence_number = records[-1]["dynamodb"]["SequenceNumber"]
        self._iterator = response.get("NextShardIterator")
        self._iterator_obtained_at = self._clock()
        self._ended = self._iterator is None
        full_page = len(raw) >= self._settings.limit
        delay = 0.0 if full_page or self._ended else self._settings.idle_delay_seconds
        return ReadResult(
            records=records, shard_ended=self._ended, data_lost=data_lost, next_poll_delay_seconds=delay
        )

    def _resume_position(self) -> StartPosition:
        if self._last_sequence_number is not None:
            return StartPosition.after(self._last_sequence_number)
        return self._start

    def _restart_at_trim_horizon(self) -> None:
        self._last_sequence_number = None
        self._start = StartPosition.trim_horizon()
        self._iterator = None

    def _renew_iterator(self) -> bool:
        """Sets a new iterator at the resume position; True when that position was trimmed and
        the iterator starts at TRIM_HORIZON instead."""
        position = self._resume_position()
        try:
            self._iterator = self._get_shard_iterator(position)
        except DataTrimmedError:
            if position.kind is not StartKind.AFTER_SEQUENCE_NUMBER:
                raise
            self._restart_at_trim_horizon()
            self._iterator = self._get_shard_iterator(self._start)
            self._iterator_obtained_at = self._clock()
            return True
        self._iterator_obtained_at = self._clock()
        return False

    def _iterator_too_old(self) -> bool:
        return self._clock() - self._iterator_obtained_at >= self._settings.iterator_max_age_seconds

    def _throttle_delay(self) -> float:
        backoff = self._settings.throttle_backoff_seconds * 2 ** (self._throttles_in_a_row - 1)
        return float(min(backoff, self._settings.throttle_backoff_max_seconds))

    # -- client calls, errors translated ---------------------------------------------------

    def _get_shard_iterator(self, position: StartPosition) -> str:
        request: dict[str, Any] = {
            "StreamArn": self._stream_arn,
            "ShardId": self._shard_id,
            "ShardIteratorType": position.kind.value,
        }
        if position.sequence_number is not None:
            request["SequenceNumber"] = position.sequence_number
        where = f"GetShardIterator {position.kind.value} on {self._stream_arn} shard {self._shard_id}"
        try:
            response = self._client.get_shard_iterator(**request)
        except (ClientError, BotoCoreError) as err:
            raise translate_error(err, where) from err
        iterator = response.get("ShardIterator")
        if not isinstance(iterator, str):
            raise DynamoDBReadError(f"{where}: the response carries no ShardIterator")
        return iterator

    def _get_records(self) -> Mapping[str, Any]:
        try:
            return self._client.get_records(ShardIterator=self._iterator, Limit=self._settings.limit)
        except (ClientError, BotoCoreError) as err:
            where = f"GetRecords on {self._stream_arn} shard {self._shard_id}"
            raise translate_error(err, where) from err
