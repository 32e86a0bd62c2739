"""Shard leases for Kinesis / DynamoDB Streams (KCL's lease table): who processes which shard.

One lease per (stream, shard). A lease has an owner, an expiry and a fencing `token` that goes
up on every ownership change (take, steal, release). Every write is fenced:

- `take` is a compare-and-set on the token: it succeeds only if nobody changed the owner since
  the caller read the lease, so of two processes taking the same lease exactly one wins.
- `renew` and `checkpoint` succeed only for the holder with the current token; a process that
  lost its lease (even while paused) can no longer write its position.
- Checkpoints move forward only: sequence numbers compare as integers (they exceed 64 bits, so
  never as floats) and `SHARD_END` comes after every sequence number.

Renewal does not change the token (only ownership changes do): an expired lease that nobody took
can still be renewed by its holder, as in KCL.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# The checkpoint of a shard that has been read to its end (its children may start).
SHARD_END = "SHARD_END"


@dataclass(frozen=True)
class Lease:
    stream: str
    shard_id: str
    owner: str | None
    # Epoch seconds; the lease is free for others to take once `now >= expires_at`.
    expires_at: float
    # Fencing token: increases on every ownership change.
    token: int
    # The last processed sequence number, SHARD_END, or None before the first checkpoint.
    checkpoint: str | None
    parent_shard_ids: tuple[str, ...] = ()

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def is_available(self, now: float) -> bool:
        """Nobody holds it: never owned, released, or its owner stopped renewing."""
        return self.owner is None or self.is_expired(now)

    def is_held_by(self, owner: str, now: float) -> bool:
        return self.owner == owner and not self.is_expired(now)

    @property
    def is_finished(self) -> bool:
        return self.checkpoint == SHARD_END


def lease_namespace(mapping_id: str, stream_arn: str) -> str:
    """The lease table of one mapping on one stream: each mapping keeps its own checkpoints, and a
    DynamoDB table whose stream is re-created starts a new table."""
    return f"{mapping_id}|{stream_arn}"


def normalize_sequence(stream: str, shard_id: str, sequence: str) -> str:
    """The checkpoint value to store: SHARD_END, or the decimal sequence number without leading zeros.

    Raises ValueError naming the shard when `sequence` is neither.
    """
    if sequence == SHARD_END:
        return sequence
    if not sequence.isascii() or not sequence.isdigit():
        raise ValueError(
            f"Lease {stream}/{shard_id}: checkpoint {sequence!r} is neither a decimal sequence number "
            f"nor {SHARD_END!r}"
        )
    return sequence.lstrip("0") or "0"


def is_forward(current: str | None, new: str) -> bool:
    """True if checkpointing `new` after `current` does not go backwards (equal is allowed).

    Both are normalized (see normalize_sequence); None means no checkpoint yet.
    """
    if current is None or new == SHARD_END:
        return True
    if current == SHARD_END:
        return False
    return int(new) >= int(current)


class LeaseStore(Protocol):
    async def ensure(self, stream: str, shard_id: str, parents: Sequence[str]) -> Lease:
        """Create the lease (unowned, token 0, no checkpoint) if absent; return the stored lease."""
        ...

    async def list(self, stream: str) -> builtins.list[Lease]:
        """Every lease of `stream`, by shard id."""
        ...

    async def take(
        self, stream: str, shard_id: str, owner: str, expected_token: int, ttl: float, now: float
    ) -> Lease | None:
        """Make `owner` the holder until now + ttl if the token is still `expected_token`.

        Returns the lease with its new token, or None if the token changed (someone else took,
        stole or released it since it was read) or the lease does not exist.
        """
        ...

    async def renew(self, stream: str, shard_id: str, owner: str, token: int, ttl: float, now: float) -> bool:
        """Extend the expiry to now + ttl; False if `owner` with `token` no longer holds the lease."""
        ...

    async def release(self, stream: str, shard_id: str, owner: str, token: int) -> bool:
        """Give the lease up (no owner, token bumped); False if `owner` with `token` no longer holds it."""
        ...

    async def checkpoint(
        self, stream: str, shard_id: str, owner: str, token: int, sequence: str, now: float
    ) -> bool:
        """Record `sequence` (or SHARD_END) as processed.

        False, and nothing written, unless `owner` holds the lease with `token`, it is unexpired
        at `now`, and `sequence` is not behind the stored checkpoint. Raises ValueError if
        `sequence` is not a sequence number.
        """
        ...

    async def delete_finished(self, stream: str, shard_id: str) -> bool:
        """Delete the lease if its checkpoint is SHARD_END (True); otherwise nothing (False).

        For leases of shards the stream no longer has: nothing is left to read or to wait on.
        """
        ...
