"""Patterns: AND across fields, OR across patterns, nesting, arrays of objects, AWS's examples,
and every compile error with the message it gives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from esm.filtering import MAX_PATTERN_CHARS, FilterPatternError, NotJsonText, RecordFilter, compile_filters


def matches(pattern: dict[str, Any], view: dict[str, Any]) -> bool:
    return compile_filters([pattern]).matches(view)


# An order event used by the structural rows below.
ORDER = {
    "status": "paid",
    "total": 120,
    "customer": {"country": "DE", "tier": "gold"},
    "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}],
    "tags": ["new", "promo"],
}

STRUCTURE = [
    # every field must match (AND)
    ({"status": ["paid"], "total": [{"numeric": [">", 100]}]}, True),
    ({"status": ["paid"], "total": [{"numeric": [">", 200]}]}, False),
    # nested objects look into nested fields; fields not in the pattern are ignored
    ({"customer": {"country": ["DE"]}}, True),
    ({"customer": {"country": ["DE"], "tier": ["silver"]}}, False),
    ({"customer": {"missing": ["x"]}}, False),
    # a field the event lacks
    ({"refund": ["x"]}, False),
    ({"refund": [{"exists": False}]}, True),
    ({"refund": {"reason": [{"exists": False}]}}, True),
    ({"refund": {"reason": ["x"]}}, False),
    # a nested pattern on a scalar field finds nothing inside it
    ({"status": {"code": ["x"]}}, False),
    ({"status": {"code": [{"exists": False}]}}, True),
    # arrays of objects: one element must match the whole nested object
    ({"items": {"sku": ["A"]}}, True),
    ({"items": {"sku": ["A"], "qty": [2]}}, True),
    ({"items": {"sku": ["A"], "qty": [1]}}, False),
    ({"items": {"sku": ["C"]}}, False),
    # an array of scalars
    ({"tags": ["promo"]}, True),
    ({"tags": [{"anything-but": ["new", "promo"]}]}, False),
    # a leaf pattern on an object field
    ({"customer": ["DE"]}, False),
]


@pytest.mark.parametrize(("pattern", "expected"), STRUCTURE)
def test_pattern_structure(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, ORDER) is expected


def test_patterns_are_ored() -> None:
    record_filter = compile_filters([{"status": ["refunded"]}, {"customer": {"tier": ["gold"]}}])
    assert record_filter.matches(ORDER)
    assert not record_filter.matches({**ORDER, "customer": {"tier": "silver"}})


def test_no_patterns_keep_every_record() -> None:
    record_filter = compile_filters([])
    assert record_filter.accepts_all
    assert record_filter.matches({})
    assert not compile_filters([{"a": ["b"]}]).accepts_all


def test_plain_text_data_matches_leaves_but_no_nested_pattern() -> None:
    view = {"value": NotJsonText("Hello, this is a test."), "topic": "t"}
    assert matches({"value": [{"prefix": "Hello"}]}, view)
    assert not matches({"value": {"greeting": ["Hello"]}}, view)
    # Lambda drops the record even for a pattern that only asks for absence inside the data.
    assert not matches({"value": {"greeting": [{"exists": False}]}}, view)
    assert matches({"topic": ["t"]}, view)


def test_compiled_pattern_does_not_depend_on_the_source_dict() -> None:
    pattern: dict[str, Any] = {"a": ["b"]}
    record_filter = compile_filters([pattern])
    pattern["a"].append("c")
    assert not record_filter.matches({"a": "c"})


# Examples from AWS's Lambda event filtering page: (pattern, matching view, non-matching view).
AWS_EXAMPLES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ({"UserID": [None]}, {"UserID": None}, {"UserID": "u1"}),
    ({"LastName": [""]}, {"LastName": ""}, {"LastName": "Doe"}),
    ({"Name": ["Alice"]}, {"Name": "Alice"}, {"Name": "Bob"}),
    (
        {"Location": ["New York"], "Day": ["Monday"]},
        {"Location": "New York", "Day": "Monday"},
        {"Location": "New York", "Day": "Tuesday"},
    ),
    ({"PaymentType": ["Credit", "Debit"]}, {"PaymentType": "Debit"}, {"PaymentType": "Cash"}),
    ({"Weather": [{"anything-but": ["Raining"]}]}, {"Weather": "Sunny"}, {"Weather": "Raining"}),
    ({"Price": [{"numeric": ["=", 100]}]}, {"Price": 100}, {"Price": 99}),
    ({"Price": [{"numeric": [">", 10, "<=", 20]}]}, {"Price": 20}, {"Price": 10}),
    ({"ProductName": [{"exists": True}]}, {"ProductName": "x"}, {}),
    ({"ProductName": [{"exists": False}]}, {}, {"ProductName": "x"}),
    ({"Region": [{"prefix": "us-"}]}, {"Region": "us-east-1"}, {"Region": "eu-west-1"}),
    ({"a": [1, 2]}, {"a": 2}, {"a": 3}),
    # Kinesis: a metadata field and a data field
    (
        {"partitionKey": ["1"], "data": {"Location": ["Los Angeles"]}},
        {"partitionKey": "1", "data": {"Location": "Los Angeles"}},
        {"partitionKey": "2", "data": {"Location": "Los Angeles"}},
    ),
    (
        {"data": {"Temperature": [{"numeric": [">", 50, "<=", 60]}]}},
        {"data": {"Temperature": 55}},
        {"data": {"Temperature": 61}},
    ),
    # DynamoDB, several levels deep
    (
        {"dynamodb": {"Keys": {"Id": {"N": ["101"]}}}},
        {"dynamodb": {"Keys": {"Id": {"N": "101"}}}},
        {"dynamodb": {"Keys": {"Id": {"N": "102"}}}},
    ),
    # Kafka: device_ID beginning with AB
    (
        {"value": {"device_ID": [{"prefix": "AB"}]}},
        {"value": {"device_ID": "AB1234", "session": {"duration": 162}}},
        {"value": {"device_ID": "CD1234"}},
    ),
]


@pytest.mark.parametrize(("pattern", "kept", "dropped"), AWS_EXAMPLES)
def test_aws_documented_example(
    pattern: dict[str, Any], kept: dict[str, Any], dropped: dict[str, Any]
) -> None:
    record_filter = compile_filters([pattern])
    assert record_filter.matches(kept)
    assert not record_filter.matches(dropped)


def _too_long_pattern() -> dict[str, Any]:
    return {"a": ["x" * (MAX_PATTERN_CHARS - 9)]}


ERRORS: list[tuple[list[Any], str]] = [
    ([{"a": ["x"]}] * 6, "Filters[5].Pattern: at most 5 filters are allowed, got 6"),
    (["{}"], 'Filters[0].Pattern: expected a JSON object, got "{}"'),
    ([{}], "Filters[0].Pattern: an empty object tests nothing; name at least one field"),
    ([{"a": {}}], "Filters[0].Pattern.a: an empty object tests nothing; name at least one field"),
    ([{"a": "x"}], 'Filters[0].Pattern.a: expected an array of matchers or a nested object, got "x"'),
    ([{"a": 5}], "Filters[0].Pattern.a: expected an array of matchers or a nested object, got 5"),
    ([{"a": []}], "Filters[0].Pattern.a: an empty array matches nothing; give at least one matcher"),
    ([{1: ["x"]}], "Filters[0].Pattern: field names are strings, got 1"),
    (
        [{"a": [["x"]]}],
        'Filters[0].Pattern.a: a matcher is a string, number, boolean, null or operator object, got ["x"]',
    ),
    ([{"a": [float("inf")]}], "Filters[0].Pattern.a: numbers must be finite, got inf"),
    (
        [{"a": ["x"]}, {"a": {"b": [{"contains": "x"}]}}],
        'Filters[1].Pattern.a.b: unknown operator "contains" '
        "(expected one of anything-but, equals-ignore-case, exists, numeric, prefix, suffix)",
    ),
    (
        [{"a": [{"prefix": "x", "suffix": "y"}]}],
        'Filters[0].Pattern.a: an operator object has exactly one key, got {"prefix": "x", "suffix": "y"}',
    ),
    ([{"a": [{"exists": "yes"}]}], 'Filters[0].Pattern.a: exists expects true or false, got "yes"'),
    ([{"a": [{"prefix": 5}]}], "Filters[0].Pattern.a: prefix expects a string, got 5"),
    ([{"a": [{"suffix": None}]}], "Filters[0].Pattern.a: suffix expects a string, got null"),
    (
        [{"a": [{"equals-ignore-case": ["x"]}]}],
        'Filters[0].Pattern.a: equals-ignore-case expects a string, got ["x"]',
    ),
    (
        [{"a": ["x"]}, {"value": {"price": [{"numeric": [">", "x"]}]}}],
        'Filters[1].Pattern.value.price: numeric expects numbers, got "x"',
    ),
    ([{"a": [{"numeric": [">", True]}]}], "Filters[0].Pattern.a: numeric expects numbers, got true"),
    (
        [{"a": [{"numeric": [">"]}]}],
        'Filters[0].Pattern.a: numeric expects [op, number] or [op, number, op, number], got [">"]',
    ),
    (
        [{"a": [{"numeric": 5}]}],
        "Filters[0].Pattern.a: numeric expects [op, number] or [op, number, op, number], got 5",
    ),
    (
        [{"a": [{"numeric": ["!=", 5]}]}],
        'Filters[0].Pattern.a: numeric has unknown operator "!=" (expected =, <, <=, >, >=)',
    ),
    (
        [{"a": [{"numeric": ["=", 5, "<", 6]}]}],
        'Filters[0].Pattern.a: numeric "=" stands alone; it cannot be part of a range',
    ),
    (
        [{"a": [{"numeric": [">", 5, ">", 6]}]}],
        "Filters[0].Pattern.a: numeric range takes one lower (>, >=) and one upper (<, <=) bound, "
        'got [">", 5, ">", 6]',
    ),
    (
        [{"a": [{"numeric": [">", 6, "<", 5]}]}],
        'Filters[0].Pattern.a: numeric range is empty: [">", 6, "<", 5]',
    ),
    (
        [{"a": [{"numeric": [">", 5, "<=", 5]}]}],
        'Filters[0].Pattern.a: numeric range is empty: [">", 5, "<=", 5]',
    ),
    ([{"a": [{"anything-but": []}]}], "Filters[0].Pattern.a: anything-but needs at least one value"),
    (
        [{"a": [{"anything-but": [None]}]}],
        "Filters[0].Pattern.a: anything-but expects strings or numbers, got null",
    ),
    (
        [{"a": [{"anything-but": True}]}],
        "Filters[0].Pattern.a: anything-but expects strings or numbers, got true",
    ),
    (
        [{"a": [{"anything-but": {"numeric": [">", 1]}}]}],
        "Filters[0].Pattern.a: anything-but takes a value, a list of values, or an object with one of "
        'prefix, suffix, equals-ignore-case; got {"numeric": [">", 1]}',
    ),
    ([{"a": [{"anything-but": {"prefix": 1}}]}], "Filters[0].Pattern.a: prefix expects a string, got 1"),
    (
        [_too_long_pattern()],
        f"Filters[0].Pattern: pattern is {MAX_PATTERN_CHARS + 1} characters as compact JSON, "
        f"over the limit of {MAX_PATTERN_CHARS}",
    ),
]


@pytest.mark.parametrize(("patterns", "message"), ERRORS)
def test_invalid_pattern_is_rejected_with_its_location(patterns: list[Any], message: str) -> None:
    with pytest.raises(FilterPatternError) as raised:
        compile_filters(patterns)
    assert str(raised.value) == message


def test_pattern_at_the_length_limit_is_accepted() -> None:
    pattern = {"a": ["x" * (MAX_PATTERN_CHARS - 10)]}  # 10 characters of {"a":[""]}
    assert len(json.dumps(pattern, separators=(",", ":"))) == MAX_PATTERN_CHARS
    assert isinstance(compile_filters([pattern]), RecordFilter)


def test_error_carries_index_path_and_message() -> None:
    with pytest.raises(FilterPatternError) as raised:
        compile_filters([{"a": ["x"]}, {"value": {"price": [{"numeric": [">", "x"]}]}}])
    assert (raised.value.index, raised.value.path, raised.value.message) == (
        1,
        "value.price",
        'numeric expects numbers, got "x"',
    )
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("pattern", "field"),
    [({"data": ["x"]}, "data"), ({"dynamodb": [{"exists": True}]}, "dynamodb")],
)
def test_json_data_field_must_be_matched_inside(pattern: dict[str, Any], field: str) -> None:
    compile_filters([pattern])  # without json_fields the leaf is allowed (Kafka's plain-text value)
    with pytest.raises(FilterPatternError) as raised:
        compile_filters([pattern], json_fields=("data", "dynamodb"))
    assert str(raised.value) == (
        f"Filters[0].Pattern.{field}: this field holds the record's JSON data; match fields inside it, "
        f'as in {{"{field}": {{"field": [...]}}}}'
    )
    assert compile_filters([{field: {"x": ["y"]}}], json_fields=("data", "dynamodb")).matches(
        {field: {"x": "y"}}
    )


def test_a_record_that_could_not_be_read_is_never_filtered_out() -> None:
    """Patterns would see only part of it; it goes to the on-failure destination instead."""
    only_orders = compile_filters([{"data": {"kind": ["order"]}}])
    assert not only_orders.matches({"data": {"kind": "refund"}})
    assert only_orders.matches({"esm:unreadable": "Data must be bytes, got str"})
