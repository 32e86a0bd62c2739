"""The permit decisions, pure: what acquire and renew do, given a function's permits at `now`.

`now` is the store's own clock (Redis `TIME`, or the clock of the one host sharing a SQLite
file), never the caller's, so skewed hosts cannot shorten or stretch each other's permits.
SQLite applies these functions inside one transaction; the Redis Lua scripts
(esm.stores.redis.permits) mirror them step by step, and one table of cases checks all three.

A permit is a lease keyed by a token the client made before sending the acquire:
- acquiring with a token that is already live is a retry of the same acquire and takes nothing
  more (idempotent);
- releasing a token also remembers it as given up for `GIVEN_UP_MEMORY_SECONDS`, and an acquire
  carrying a given-up token is refused. A client whose acquire timed out releases its token, so
  the acquire arriving late (still queued on an abandoned connection) cannot create a permit
  nobody holds. Past that memory a late acquire could still take a permit, but nobody renews it,
  so it lasts one lease at most. The same bound holds for the one case the client cannot see:
  a command its Redis client resent after a connection error, whose first copy arrives after the
  copy that was answered "full".
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping

# How long a released token is remembered, so that its late-arriving acquire is refused.
GIVEN_UP_MEMORY_SECONDS = 120.0


class Acquire(enum.Enum):
    TAKEN = "taken"
    # The token is live already: a retried acquire, answered with the same permit.
    ALREADY_HELD = "already held"
    FULL = "full"
    # The token was released before this acquire arrived: its client gave it up.
    GIVEN_UP = "given up"

    @property
    def holds(self) -> bool:
        """Whether the token holds a permit after this acquire (its expiry is moved to now + lease)."""
        return self in (Acquire.TAKEN, Acquire.ALREADY_HELD)


def decide_acquire(
    expiries: Mapping[str, float], given_up: Collection[str], token: str, limit: int, now: float
) -> Acquire:
    """`expiries`: token -> expiry of the function's permits (expired ones included);
    `given_up`: tokens released within GIVEN_UP_MEMORY_SECONDS."""
    if token in given_up:
        return Acquire.GIVEN_UP
    if expiries.get(token, now) > now:
        return Acquire.ALREADY_HELD
    live = sum(1 for expiry in expiries.values() if expiry > now)
    return Acquire.FULL if live >= limit else Acquire.TAKEN


def decide_renew(expiries: Mapping[str, float], token: str, now: float) -> bool:
    """A permit is renewed only while live: once expired, another holder may have its slot."""
    return expiries.get(token, now) > now
