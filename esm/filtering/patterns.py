"""Compiling FilterCriteria patterns into a `RecordFilter`.

Every field of a pattern object must match (AND); the patterns themselves are OR'd. A nested
pattern object matches a field holding an object by its fields, an array of objects when one
element matches the whole nested object (EventBridge's array consistency), and a field that is
missing or scalar only if every nested field accepts "missing" (`{"exists": false}`). It never
matches plain-text data: Lambda drops a record whose non-JSON data a pattern looks into.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from esm.events.unreadable import UNREADABLE
from esm.filtering.errors import FilterPatternError, PatternLocation, show
from esm.filtering.leaves import ValueTest, compile_leaf
from esm.filtering.values import MISSING, UNDECODABLE, NotJsonText

MAX_FILTERS: Final = 5
MAX_PATTERN_CHARS: Final = 4096

ViewTest = Callable[[Mapping[str, Any]], bool]
_Fields = tuple[tuple[str, ValueTest], ...]


class RecordFilter:
    """Compiled FilterCriteria: `matches(view)` is True when any pattern matches the view."""

    def __init__(self, patterns: Sequence[ViewTest]) -> None:
        self._patterns = tuple(patterns)

    @property
    def accepts_all(self) -> bool:
        """No patterns, so every record is kept (callers may skip building views)."""
        return not self._patterns

    def matches(self, view: Mapping[str, Any]) -> bool:
        # A record the reader could not decode is never filtered out: patterns would see only
        # part of it, and it goes to the on-failure destination (esm.events.unreadable).
        return not self._patterns or UNREADABLE in view or any(pattern(view) for pattern in self._patterns)


def compile_filters(
    patterns: Sequence[Mapping[str, Any]], *, json_fields: Collection[str] = ()
) -> RecordFilter:
    """Validate and compile a mapping's patterns, each already parsed from its JSON text.

    `json_fields` names top-level fields that always hold JSON data (Kinesis `data`, DynamoDB
    `dynamodb`): Lambda rejects a pattern that matches such a field as a plain value.
    Raises `FilterPatternError` naming the filter and field at fault.
    """
    if len(patterns) > MAX_FILTERS:
        raise FilterPatternError(
            MAX_FILTERS, "", f"at most {MAX_FILTERS} filters are allowed, got {len(patterns)}"
        )
    return RecordFilter(
        [
            _compile_pattern(PatternLocation(index), pattern, json_fields)
            for index, pattern in enumerate(patterns)
        ]
    )


def _compile_pattern(where: PatternLocation, pattern: object, json_fields: Collection[str]) -> ViewTest:
    if not isinstance(pattern, Mapping):
        raise where.error(f"expected a JSON object, got {show(pattern)}")
    for name in json_fields:
        if name in pattern and not isinstance(pattern[name], Mapping):
            raise where.child(name).error(
                "this field holds the record's JSON data; match fields inside it, "
                f'as in {{"{name}": {{"field": [...]}}}}'
            )
    fields = _compile_fields(where, pattern)
    length = len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False))
    if length > MAX_PATTERN_CHARS:
        raise where.error(
            f"pattern is {length} characters as compact JSON, over the limit of {MAX_PATTERN_CHARS}"
        )

    def matches_view(view: Mapping[str, Any]) -> bool:
        return all(test(view.get(name, MISSING)) for name, test in fields)

    return matches_view


def _compile_fields(where: PatternLocation, pattern: Mapping[Any, Any]) -> _Fields:
    if not pattern:
        raise where.error("an empty object tests nothing; name at least one field")
    fields: list[tuple[str, ValueTest]] = []
    for name, rule in pattern.items():
        if not isinstance(name, str):
            raise where.error(f"field names are strings, got {show(name)}")
        inner = where.child(name)
        if isinstance(rule, Mapping):
            fields.append((name, _compile_object(inner, rule)))
        elif isinstance(rule, list | tuple):
            fields.append((name, compile_leaf(inner, rule)))
        else:
            raise inner.error(f"expected an array of matchers or a nested object, got {show(rule)}")
    return tuple(fields)


def _compile_object(where: PatternLocation, pattern: Mapping[Any, Any]) -> ValueTest:
    fields = _compile_fields(where, pattern)
    # Whether this object matches where there is nothing inside: decided once, at compile time.
    matches_nothing_inside = all(test(MISSING) for _, test in fields)

    def matches_object(value: Any) -> bool:
        kind = type(value)
        if kind is dict:
            return all(test(value.get(name, MISSING)) for name, test in fields)
        if kind is list:
            return any(matches_object(element) for element in value) if value else matches_nothing_inside
        if kind is NotJsonText or value is UNDECODABLE:
            return False
        return matches_nothing_inside

    return matches_object
