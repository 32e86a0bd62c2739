"""ParallelizationFactor: a shard's records spread over lanes, and the checkpoint they allow.

With ParallelizationFactor N a shard (a Kafka partition, a Kinesis or DynamoDB Streams shard)
runs up to N batches at once. Each record goes to lane `lane_for(key, N)` (Kafka: its key;
Kinesis: its partition key; DynamoDB: its item's `dynamodb_lane_key`), and each lane has one
batch in flight, so records of one key keep their order. The hash is CRC-32 of the UTF-8 key,
the same in every process and run, so a shard taken over by another process spreads its keys the
same way. A record without a key (a Kafka record with a null key) has no order to keep: such
records are spread by their place in the shard (`lane_for_keyless`).

Lanes finish out of order relative to each other, but the shard has one checkpoint. The
`CompletionTracker` numbers the shard's records in shard order (tickets) as they are dispatched
and keeps each lane's completed-through ticket. The checkpoint is the last record of the longest
prefix of the shard that every lane has completed, so a restart from it never skips a record
(records of a faster lane past it are delivered again: at least once).

    tickets   0   1   2   3   4   5
    lanes     A   B   A   A   B   B      A completed through 3, B through 1
    done      x   x   x   x   .   .  ->  checkpoint = the record of ticket 3

Pure logic: no I/O and no clock. Amortized O(1) per record; memory bounded by the records not
yet covered by the checkpoint.
"""

from __future__ import annotations

import zlib
from binascii import b2a_base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")

MIN_LANES = 1
MAX_LANES = 10

# A ticket before any: a lane that has completed nothing.
_NONE_COMPLETED = -1


def _check_lanes(lanes: int) -> None:
    if not MIN_LANES <= lanes <= MAX_LANES:
        raise ValueError(
            f"ParallelizationFactor (lanes) must be between {MIN_LANES} and {MAX_LANES}, got {lanes}"
        )


def lane_for(key: str, lanes: int) -> int:
    """The lane (0 to lanes - 1) of a record with partition key `key`, stable across processes."""
    _check_lanes(lanes)
    if lanes == 1:
        return 0
    return zlib.crc32(key.encode("utf-8")) % lanes


def lane_for_keyless(order: int, lanes: int) -> int:
    """The lane of a record with no key, by its place in the shard (consecutive records go to
    consecutive lanes)."""
    _check_lanes(lanes)
    return order % lanes


def sequence_order(sequence_number: str) -> int:
    """A Kinesis or DynamoDB sequence number as the integer that orders it (they exceed 64 bits:
    never a float). ValueError when it is not a decimal sequence number."""
    if not sequence_number.isascii() or not sequence_number.isdigit():
        raise ValueError(f"sequence number {sequence_number!r} is not a decimal sequence number")
    return int(sequence_number)


def _binary_as_base64(value: object) -> str:
    # boto3 hands binary key attributes (B) over as bytes; Lambda's event carries them as base64.
    # Both spell the same item, so both must give the same lane key.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b2a_base64(value, newline=False).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not a DynamoDB attribute value")


def dynamodb_lane_key(keys: Mapping[str, Any]) -> str:
    """A canonical string for a DynamoDB stream record's `dynamodb.Keys` (attribute-value JSON):
    the same for the same item whatever the order of the attributes, and whether binary values
    are bytes (boto3) or base64 (the event)."""
    if not keys:
        raise ValueError("dynamodb.Keys must name at least one key attribute, got an empty mapping")
    try:
        return orjson.dumps(keys, default=_binary_as_base64, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError as error:  # orjson.JSONEncodeError is a TypeError
        raise ValueError(f"dynamodb.Keys is not DynamoDB attribute-value JSON: {error}") from error


@dataclass(frozen=True)
class _Dispatched(Generic[T]):
    lane: int
    record: T


class CompletionTracker(Generic[T]):
    """One shard's records, dispatched to lanes in shard order, completed per lane in lane order.
    Records are opaque here; `dispatched` is told each one's order in the shard."""

    def __init__(self, lanes: int) -> None:
        _check_lanes(lanes)
        self._lanes = lanes
        # Records not yet covered by the checkpoint, by ticket; tickets are consecutive from
        # `_first_outstanding`, and dicts keep insertion order, so the first entry is the oldest.
        self._outstanding: dict[int, _Dispatched[T]] = {}
        self._first_outstanding = 0
        self._next_ticket = 0
        self._completed_through = [_NONE_COMPLETED] * lanes
        self._last_order: int | None = None
        self._checkpoint: T | None = None

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def checkpoint(self) -> T | None:
        """The record at and before which every record has completed (None before any)."""
        return self._checkpoint

    @property
    def outstanding(self) -> int:
        """Records dispatched but not yet covered by the checkpoint."""
        return self._next_ticket - self._first_outstanding

    def dispatched(self, lane: int, record: T, order: int) -> int:
        """Registers the next record of the shard as given to `lane`; `order` is its place in
        the shard (an offset, a sequence number). Returns its ticket (0, 1, 2, ...). ValueError
        for a lane out of range or a record that is not after the previous one."""
        self._check_lane(lane, "dispatched")
        if self._last_order is not None and order <= self._last_order:
            raise ValueError(
                f"position {order} dispatched after {self._last_order}: "
                "records must be dispatched in shard order"
            )
        self._last_order = order
        ticket = self._next_ticket
        self._outstanding[ticket] = _Dispatched(lane, record)
        self._next_ticket += 1
        return ticket

    def completed(self, lane: int, ticket: int) -> T | None:
        """Lane `lane` has completed (checkpointed or given up) every record it was given up to
        and including `ticket`. Returns the shard's new checkpoint if it moved forward, else None
        (also for a completion reported again). ValueError when `ticket` was not dispatched to
        `lane`, or is before the lane's last reported completion."""
        self._check_lane(lane, "completed")
        if not 0 <= ticket < self._next_ticket:
            raise ValueError(f"lane {lane}: ticket {ticket} was never dispatched")
        through = self._completed_through[lane]
        if ticket == through:
            return None
        if ticket < through:
            raise ValueError(
                f"lane {lane} completed through ticket {ticket} after completing through {through}: "
                "completions must not go backwards"
            )
        self._check_dispatched_to(lane, ticket)
        self._completed_through[lane] = ticket
        return self._advance()

    def _check_lane(self, lane: int, call: str) -> None:
        if not 0 <= lane < self._lanes:
            raise ValueError(f"{call}: lane {lane} is out of range 0-{self._lanes - 1}")

    def _check_dispatched_to(self, lane: int, ticket: int) -> None:
        record = self._outstanding.get(ticket)
        if record is None:
            # The checkpoint covers it, so its own lane completed it; `lane` has not (the ticket
            # is past the lane's completed-through), so it was another lane's.
            raise ValueError(f"lane {lane}: ticket {ticket} was dispatched to another lane")
        if record.lane != lane:
            raise ValueError(f"lane {lane}: ticket {ticket} was dispatched to lane {record.lane}")

    def _advance(self) -> T | None:
        """Moves the checkpoint over the completed head of the shard; returns it if it moved."""
        moved = False
        while self._first_outstanding < self._next_ticket:
            head = self._outstanding[self._first_outstanding]
            if self._completed_through[head.lane] < self._first_outstanding:
                break
            del self._outstanding[self._first_outstanding]
            self._first_outstanding += 1
            self._checkpoint = head.record
            moved = True
        return self._checkpoint if moved else None
