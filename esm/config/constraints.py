"""Reusable field constraints, each raising an error in esm's wording.

Range errors read `must be between A and B, got X`; enums `must be one of A, B, got 'X'`. Built-in
pydantic bound checks (`ge`/`le`) are not used because they report one bound at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, AllowInfNan, BeforeValidator, Strict

from esm.config.problems import describe, format_number, problem

_N = TypeVar("_N", int, float)
_E = TypeVar("_E", bound=StrEnum)

StrictInt = Annotated[int, Strict()]
# Accepts ints too; rejects booleans, strings, NaN and infinities (YAML's .nan/.inf, JSON's NaN).
StrictFloat = Annotated[float, Strict(), AllowInfNan(False)]
StrictBool = Annotated[bool, Strict()]
StrictStr = Annotated[str, Strict()]


def between(low: float, high: float) -> AfterValidator:
    """Inclusive range check."""

    def check(value: _N) -> _N:
        if not low <= value <= high:
            raise problem(
                "range",
                f"must be between {format_number(low)} and {format_number(high)}, got {describe(value)}",
            )
        return value

    return AfterValidator(check)


def minus_one_or_between(low: int, high: int) -> AfterValidator:
    """AWS's "-1 means infinite" integers (MaximumRetryAttempts, MaximumRecordAgeInSeconds)."""

    def check(value: int) -> int:
        if value != -1 and not low <= value <= high:
            raise problem("range", f"must be -1 or between {low} and {high}, got {describe(value)}")
        return value

    return AfterValidator(check)


def greater_than_zero() -> AfterValidator:
    def check(value: _N) -> _N:
        if value <= 0:
            raise problem("range", f"must be greater than 0, got {describe(value)}")
        return value

    return AfterValidator(check)


def one_of(enum: type[_E]) -> BeforeValidator:
    """Accept an enum member by its exact value, with esm's `must be one of` wording."""
    choices = ", ".join(member.value for member in enum)

    def convert(value: object) -> _E:
        if isinstance(value, str):
            for member in enum:
                if member.value == value:
                    return member
        raise problem("enum", f"must be one of {choices}, got {describe(value)}")

    return BeforeValidator(convert)


def matching(pattern: str, expected: str) -> AfterValidator:
    """Full-match a string against a regex; `expected` says in words what was wanted."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise problem("format", f"expected {expected}, got {describe(value)}")
        return value

    return AfterValidator(check)


def validated_by(parse: Callable[[str], object], kind: str) -> AfterValidator:
    """Check a string with a parser that raises ValueError carrying the full message."""

    def check(value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise problem(kind, str(error)) from None
        return value

    return AfterValidator(check)


def parse_host_port(value: str) -> tuple[str, int]:
    """`host:port` or `[v6-address]:port` -> (host, port); ValueError names what was wrong."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or (":" in host and not value.startswith("[")):
        raise ValueError(f"expected host:port, got {describe(value)}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {port_text} in {describe(value)}")
    return host, port


HostPort = Annotated[StrictStr, validated_by(parse_host_port, "host_port")]
"""A `host:port` string such as `127.0.0.1:50051` or `[::1]:9092`."""


def non_empty(what: str) -> AfterValidator:
    def check(value: tuple[object, ...]) -> tuple[object, ...]:
        if not value:
            raise problem("too_short", f"must list at least one {what}")
        return value

    return AfterValidator(check)
