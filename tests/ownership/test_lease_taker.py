"""LeaseTaker's rules, one table row each, with the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from esm.ownership.lease_taker import LeaseTaker
from esm.ownership.leases import SHARD_END, Lease

NOW = 1000.0
LIVE = NOW + 30.0  # an expiry still ahead of NOW
GONE = NOW - 1.0  # an expiry already passed


def lease(
    shard: str, owner: str | None = None, expires_at: float = LIVE, checkpoint: str | None = None
) -> Lease:
    return Lease("s", shard, owner, expires_at if owner else 0.0, 3, checkpoint)


@dataclass(frozen=True)
class Case:
    rule: str
    leases: list[Lease]
    members: list[str]
    expected: list[str]


CASES = [
    Case("nothing to take in an empty table", [], ["me"], []),
    Case(
        "unowned leases are taken up to the fair share",
        [lease("0"), lease("1"), lease("2"), lease("3")],
        ["me", "b"],
        ["0", "1"],
    ),
    Case(
        "expired leases are available, my own expired one too",
        [lease("0", "b", GONE), lease("1", "me", GONE), lease("2", "b"), lease("3", "b")],
        ["me", "b"],
        ["0", "1"],
    ),
    Case(
        "a lease expiring exactly now is expired",
        [lease("0", "b", NOW), lease("1", "b")],
        ["me", "b"],
        ["0"],
    ),
    Case(
        "holding my fair share, I take nothing, even if leases are available",
        [lease("0", "me"), lease("1", "me"), lease("2"), lease("3", "b")],
        ["me", "b", "c"],
        [],
    ),
    Case(
        "finished leases are neither counted nor taken",
        [lease("0", checkpoint=SHARD_END), lease("1", "b"), lease("2", "me")],
        ["me", "b"],
        [],
    ),
    Case(
        "available leases are taken first: no steal in the same round",
        [lease("0", "b"), lease("1", "b"), lease("2", "b"), lease("3")],
        ["me", "b"],
        ["3"],
    ),
    Case(
        "below my share with nothing available: steal one from the most loaded member",
        [lease(str(i), owner) for i, owner in enumerate(["b", "c", "c", "c", "c", "b"])],
        ["me", "b", "c"],
        ["1"],
    ),
    Case(
        "no steal from a member holding only its fair share",
        [lease("0", "b"), lease("1", "b"), lease("2", "c"), lease("3", "c"), lease("4", "me")],
        ["me", "b", "c"],
        [],
    ),
    Case(
        "most loaded tie: the smallest member id loses a lease",
        [lease(str(i), owner) for i, owner in enumerate(["c", "c", "c", "b", "b", "b"])],
        ["me", "b", "c"],
        ["3"],
    ),
    Case(
        "a member not yet in members_alive still counts as a holder to steal from",
        [lease("0", "x"), lease("1", "x"), lease("2", "x")],
        ["me"],
        ["0"],
    ),
    Case(
        "members_alive need not list me",
        [lease("0"), lease("1"), lease("2"), lease("3")],
        ["b"],
        ["0", "1"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.rule for case in CASES])
def test_plan(case: Case) -> None:
    planned = LeaseTaker().plan(case.leases, "me", case.members, NOW)
    assert [chosen.shard_id for chosen in planned] == case.expected


def test_planned_leases_carry_the_token_read() -> None:
    # The caller takes with the token it read, so a lease changed meanwhile is not taken.
    (planned,) = LeaseTaker().plan([lease("0")], "me", ["me"], NOW)
    assert planned.token == 3


def test_the_clock_decides_expiry() -> None:
    leases = [lease("0", "b", LIVE)]
    assert LeaseTaker().plan(leases, "me", ["me", "b"], NOW) == []  # b holds just its share
    later = LeaseTaker().plan(leases, "me", ["me", "b"], LIVE)
    assert [chosen.shard_id for chosen in later] == ["0"]  # b stopped renewing
