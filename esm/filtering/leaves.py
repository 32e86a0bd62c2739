"""Leaves: an array of matchers, OR'd, compiled into one test of a field's value.

A leaf matches an array value when any element matches (nested arrays flattened). An object
is not a leaf value: a leaf sees a field holding an object as missing, so only
`{"exists": false}` matches it, as in EventBridge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from esm.filtering.errors import PatternLocation, show
from esm.filtering.values import MISSING, exact_key

# Tests one value found at a pattern's field (`MISSING` when the field is absent).
ValueTest = Callable[[Any], bool]

_SCALAR_TYPES: Final = (str, int, float, bool, type(None))
_NUMERIC_LOWER: Final = {">": False, ">=": True}  # operator -> bound is inclusive
_NUMERIC_UPPER: Final = {"<": False, "<=": True}


def compile_leaf(where: PatternLocation, rules: Sequence[Any]) -> ValueTest:
    if not rules:
        raise where.error("an empty array matches nothing; give at least one matcher")
    exact: set[tuple[type, Any]] = set()
    tests: list[ValueTest] = []
    exists: set[bool] = set()
    for rule in rules:
        if isinstance(rule, Mapping):
            operator = _compile_operator(where, rule)
            if isinstance(operator, bool):
                exists.add(operator)
            else:
                tests.append(operator)
        else:
            exact.add(exact_key(_exact_value(where, rule)))
    matches_scalar = _scalar_test(frozenset(exact), tuple(tests), True in exists)
    return _leaf_test(matches_scalar, matches_missing=False in exists)


def _scalar_test(exact: frozenset[tuple[type, Any]], tests: tuple[ValueTest, ...], exists: bool) -> ValueTest:
    if exists:
        return lambda value: True
    if not tests:
        return lambda value: exact_key(value) in exact

    def matches_scalar(value: Any) -> bool:
        if exact and exact_key(value) in exact:
            return True
        return any(test(value) for test in tests)

    return matches_scalar


def _leaf_test(matches_scalar: ValueTest, matches_missing: bool) -> ValueTest:
    def matches_leaf(value: Any) -> bool:
        if value is MISSING:
            return matches_missing
        kind = type(value)
        if kind is dict:
            return matches_missing
        if kind is list:
            leaves = _leaf_values(value)
            return any(matches_scalar(leaf) for leaf in leaves) if leaves else matches_missing
        return matches_scalar(value)

    return matches_leaf


def _leaf_values(values: list[Any]) -> list[Any]:
    """An array's scalar elements, nested arrays flattened, objects skipped."""
    leaves: list[Any] = []
    for value in values:
        kind = type(value)
        if kind is list:
            leaves.extend(_leaf_values(value))
        elif kind is not dict:
            leaves.append(value)
    return leaves


def _exact_value(where: PatternLocation, value: Any) -> Any:
    if not isinstance(value, _SCALAR_TYPES):
        raise where.error(
            f"a matcher is a string, number, boolean, null or operator object, got {show(value)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise where.error(f"numbers must be finite, got {value}")
    return value


def _compile_operator(where: PatternLocation, rule: Mapping[Any, Any]) -> ValueTest | bool:
    """An operator object as a value test, or (for "exists") the bool it asks for."""
    if len(rule) != 1:
        raise where.error(f"an operator object has exactly one key, got {show(rule)}")
    ((name, argument),) = rule.items()
    if name == "exists":
        if not isinstance(argument, bool):
            raise where.error(f"exists expects true or false, got {show(argument)}")
        return argument
    if name == "numeric":
        return _compile_numeric(where, argument)
    if name == "anything-but":
        return _compile_anything_but(where, argument)
    if name in _STRING_OPERATORS:
        return _compile_string_operator(where, name, argument)
    known = ", ".join(sorted([*_STRING_OPERATORS, "anything-but", "exists", "numeric"]))
    raise where.error(f"unknown operator {show(name)} (expected one of {known})")


def _prefix(prefix: str) -> ValueTest:
    return lambda value: isinstance(value, str) and value.startswith(prefix)


def _suffix(suffix: str) -> ValueTest:
    return lambda value: isinstance(value, str) and value.endswith(suffix)


def _equals_ignore_case(text: str) -> ValueTest:
    folded = text.casefold()
    return lambda value: isinstance(value, str) and value.casefold() == folded


_STRING_OPERATORS: Final[dict[str, Callable[[str], ValueTest]]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
}


def _compile_string_operator(where: PatternLocation, name: str, argument: Any) -> ValueTest:
    if not isinstance(argument, str):
        raise where.error(f"{name} expects a string, got {show(argument)}")
    return _STRING_OPERATORS[name](argument)


def _compile_anything_but(where: PatternLocation, argument: Any) -> ValueTest:
    """Matches any present value the argument does not: a value, a list of values, or a string
    operator (`{"anything-but": {"prefix": "x"}}`)."""
    if isinstance(argument, Mapping):
        if len(argument) != 1 or next(iter(argument)) not in _STRING_OPERATORS:
            raise where.error(
                f"anything-but takes a value, a list of values, or an object with one of "
                f"{', '.join(_STRING_OPERATORS)}; got {show(argument)}"
            )
        ((name, inner),) = argument.items()
        excluded = _compile_string_operator(where, name, inner)
        return lambda value: not excluded(value)
    values = list(argument) if isinstance(argument, list | tuple) else [argument]
    if not values:
        raise where.error("anything-but needs at least one value")
    for value in values:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise where.error(f"anything-but expects strings or numbers, got {show(value)}")
    keys = frozenset(exact_key(_exact_value(where, value)) for value in values)
    return lambda value: exact_key(value) not in keys


def _compile_numeric(where: PatternLocation, argument: Any) -> ValueTest:
    """`["=", n]`, one bound (`[">", n]`), or a range: one lower and one upper bound."""
    if not isinstance(argument, list | tuple) or len(argument) not in (2, 4):
        raise where.error(f"numeric expects [op, number] or [op, number, op, number], got {show(argument)}")
    pairs = [(argument[position], argument[position + 1]) for position in range(0, len(argument), 2)]
    for operator, number in pairs:
        if operator not in ("=", *_NUMERIC_LOWER, *_NUMERIC_UPPER):
            raise where.error(f"numeric has unknown operator {show(operator)} (expected =, <, <=, >, >=)")
        if not isinstance(number, int | float) or isinstance(number, bool) or not math.isfinite(number):
            raise where.error(f"numeric expects numbers, got {show(number)}")
    if pairs[0][0] == "=":
        if len(pairs) != 1:
            raise where.error('numeric "=" stands alone; it cannot be part of a range')
        target = pairs[0][1]
        return lambda value: type(value) in (int, float) and bool(value == target)
    lower: tuple[float, bool] | None = None
    upper: tuple[float, bool] | None = None
    for operator, number in pairs:
        if operator in _NUMERIC_LOWER and lower is None:
            lower = (number, _NUMERIC_LOWER[operator])
        elif operator in _NUMERIC_UPPER and upper is None:
            upper = (number, _NUMERIC_UPPER[operator])
        else:
            raise where.error(
                f"numeric range takes one lower (>, >=) and one upper (<, <=) bound, got {show(argument)}"
            )
    if lower and upper and (lower[0] > upper[0] or (lower[0] == upper[0] and not (lower[1] and upper[1]))):
        raise where.error(f"numeric range is empty: {show(argument)}")
    return _numeric_range(lower or (-math.inf, True), upper or (math.inf, True))


def _numeric_range(lower: tuple[float, bool], upper: tuple[float, bool]) -> ValueTest:
    low, low_inclusive = lower
    high, high_inclusive = upper

    def in_range(value: Any) -> bool:
        if type(value) not in (int, float):  # booleans and numeric strings are not numbers
            return False
        above: bool = value >= low if low_inclusive else value > low
        below: bool = value <= high if high_inclusive else value < high
        return above and below

    return in_range
