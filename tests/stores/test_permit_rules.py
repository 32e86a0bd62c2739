"""The pure permit decisions (esm.stores.permit_rules), table-driven."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from esm.stores.permit_rules import Acquire, decide_acquire, decide_renew

NOW = 1_000.0


@dataclass(frozen=True)
class AcquireCase:
    name: str
    expiries: dict[str, float]
    expected: Acquire
    given_up: frozenset[str] = field(default_factory=frozenset)
    token: str = "t"
    limit: int = 2


ACQUIRE_CASES = [
    AcquireCase("room", {}, Acquire.TAKEN),
    AcquireCase("full", {"a": NOW + 5, "b": NOW + 5}, Acquire.FULL),
    AcquireCase("an expired permit leaves room", {"a": NOW - 1, "b": NOW + 5}, Acquire.TAKEN),
    AcquireCase("a permit expiring now has expired", {"a": NOW, "b": NOW + 5}, Acquire.TAKEN),
    AcquireCase(
        "a retry of a live token, even when full", {"t": NOW + 5, "b": NOW + 5}, Acquire.ALREADY_HELD
    ),
    AcquireCase("an expired own token is taken anew if there is room", {"t": NOW - 1}, Acquire.TAKEN),
    AcquireCase(
        "an expired own token is not taken when full", {"t": NOW, "a": NOW + 1, "b": NOW + 1}, Acquire.FULL
    ),
    AcquireCase("a given-up token is refused with room", {}, Acquire.GIVEN_UP, given_up=frozenset({"t"})),
    AcquireCase(
        "a given-up token is refused, others are not",
        {"a": NOW + 5},
        Acquire.TAKEN,
        given_up=frozenset({"x"}),
    ),
]


@pytest.mark.parametrize("case", ACQUIRE_CASES, ids=lambda case: case.name)
def test_acquire(case: AcquireCase) -> None:
    decision = decide_acquire(case.expiries, case.given_up, case.token, case.limit, NOW)

    assert decision is case.expected
    assert decision.holds == (case.expected in (Acquire.TAKEN, Acquire.ALREADY_HELD))


@pytest.mark.parametrize(
    ("name", "expiries", "renewed"),
    [
        ("live", {"t": NOW + 0.001}, True),
        ("expiring now", {"t": NOW}, False),
        ("expired", {"t": NOW - 3}, False),
        ("released or never taken", {"a": NOW + 5}, False),
    ],
)
def test_renew(name: str, expiries: dict[str, float], renewed: bool) -> None:
    assert decide_renew(expiries, "t", NOW) is renewed
