"""What the stream shard readers (Kinesis, DynamoDB Streams) share: where a read starts, and what
one read returns, so one shard consumer can drive either."""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from esm.events.unreadable import unreadable_reason


class StreamReadError(Exception):
    """Reading or listing a stream's shards failed (Kinesis, DynamoDB Streams). `retryable`: the
    same call may succeed later; otherwise it needs an operator (stream deleted, access denied)."""

    retryable: ClassVar[bool] = False


class StartKind(enum.Enum):
    AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AT_TIMESTAMP = "AT_TIMESTAMP"  # Kinesis only


@dataclass(frozen=True)
class StartPosition:
    """Where a shard is read from: after a checkpoint, or the mapping's StartingPosition."""

    kind: StartKind
    sequence_number: str | None = None  # AFTER_SEQUENCE_NUMBER only
    timestamp: float | None = None  # AT_TIMESTAMP only: epoch seconds

    def __post_init__(self) -> None:
        for name, needed in (
            ("sequence_number", self.kind is StartKind.AFTER_SEQUENCE_NUMBER),
            ("timestamp", self.kind is StartKind.AT_TIMESTAMP),
        ):
            value = getattr(self, name)
            if needed != (value is not None and value != ""):
                raise ValueError(
                    f"StartPosition {self.kind.value}: {name} must be "
                    f"{'given' if needed else 'omitted'}, got {value!r}"
                )

    @classmethod
    def after(cls, sequence_number: str) -> StartPosition:
        return cls(StartKind.AFTER_SEQUENCE_NUMBER, sequence_number=sequence_number)

    @classmethod
    def trim_horizon(cls) -> StartPosition:
        return cls(StartKind.TRIM_HORIZON)

    @classmethod
    def latest(cls) -> StartPosition:
        return cls(StartKind.LATEST)

    @classmethod
    def at_timestamp(cls, epoch_seconds: float) -> StartPosition:
        return cls(StartKind.AT_TIMESTAMP, timestamp=epoch_seconds)


@dataclass(frozen=True)
class ChildShard:
    shard_id: str
    parent_shard_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReadResult:
    # Lambda event entries (esm.events.kinesis / esm.events.dynamodb), in sequence order.
    records: list[dict[str, Any]]
    # No NextShardIterator: nothing will ever follow `records` in this shard.
    shard_ended: bool = False
    # The checkpoint had been trimmed by retention: reading resumed at TRIM_HORIZON.
    data_lost: bool = False
    # The read was throttled (no records); `next_poll_delay_seconds` is the backoff.
    throttled: bool = False
    # When to read again: 0 while behind, the idle interval once caught up.
    next_poll_delay_seconds: float = 0.0
    # Kinesis only (None / () for DynamoDB Streams, whose children DescribeStream names).
    millis_behind_latest: int | None = None
    child_shards: tuple[ChildShard, ...] = field(default_factory=tuple)


# How a read went, as `esm_shard_reads_total` labels it.
READ_RESULTS = ("records", "empty", "throttled")


def read_result(result: ReadResult) -> str:
    if result.throttled:
        return "throttled"
    return "records" if result.records else "empty"


def warn_unreadable(records: Sequence[dict[str, Any]], log: logging.Logger) -> None:
    """Logs each record a reader could not decode (it goes to the on-failure destination)."""
    for entry in records:
        reason = unreadable_reason(entry)
        if reason is not None:
            log.warning("%s; it goes to the on-failure destination, uninvoked", reason)
