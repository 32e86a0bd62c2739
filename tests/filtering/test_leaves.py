"""Each matcher of an array leaf, one row per rule: (matchers, field value, expected)."""

from __future__ import annotations

from typing import Any

import pytest

from esm.filtering import UNDECODABLE, NotJsonText, compile_filters

ABSENT = object()  # the event has no field "f"


def leaf_matches(matchers: list[Any], value: Any) -> bool:
    event = {} if value is ABSENT else {"f": value}
    return compile_filters([{"f": matchers}]).matches(event)


EXACT = [
    # strings: exact, character by character
    (["Alice"], "Alice", True),
    (["Alice"], "alice", False),
    (["Alice"], "Alice ", False),
    (["Alice"], ABSENT, False),
    # numbers and strings never equal each other; numbers compare as written (300 != 300.0)
    ([300], 300, True),
    ([300], "300", False),
    (["300"], 300, False),
    ([300], 300.0, False),
    ([300.0], 300.0, True),
    ([300], 301, False),
    # booleans are not numbers
    ([True], True, True),
    ([True], 1, False),
    ([1], True, False),
    ([False], 0, False),
    ([True], "true", False),
    # null
    ([None], None, True),
    ([None], ABSENT, False),
    ([None], "", False),
    ([None], "null", False),
    # empty string
    ([""], "", True),
    ([""], None, False),
    ([""], ABSENT, False),
    # values in one array are OR'd
    (["Credit", "Debit"], "Debit", True),
    (["Credit", "Debit"], "Cash", False),
    ([1, "1"], "1", True),
    # an array value matches when any element matches, nested arrays included
    (["x"], ["y", "x"], True),
    (["x"], ["y", "z"], False),
    (["x"], [["y"], ["x"]], True),
    (["x"], [], False),
    # an object is not a leaf value
    (["x"], {"x": "x"}, False),
    # plain-text (non-JSON) data compares as its string; undecodable data equals nothing
    (["hello"], NotJsonText("hello"), True),
    (["hello"], UNDECODABLE, False),
]

ANYTHING_BUT = [
    ([{"anything-but": ["Raining"]}], "Sunny", True),
    ([{"anything-but": ["Raining"]}], "Raining", False),
    ([{"anything-but": ["Raining", "Snowing"]}], "Snowing", False),
    ([{"anything-but": "Raining"}], "Sunny", True),
    ([{"anything-but": "Raining"}], "Raining", False),
    # it needs the field to be there
    ([{"anything-but": "Raining"}], ABSENT, False),
    # numbers, type-exact: "101" is not the number 101
    ([{"anything-but": 101}], 101, False),
    ([{"anything-but": 101}], 102, True),
    ([{"anything-but": 101}], "101", True),
    ([{"anything-but": [100, 200]}], 200, False),
    # values of another type are "anything but" the listed ones
    ([{"anything-but": "x"}], 5, True),
    ([{"anything-but": "x"}], None, True),
    ([{"anything-but": "x"}], UNDECODABLE, True),
    # arrays: matches when some element is not excluded
    ([{"anything-but": ["a", "b"]}], ["a", "c"], True),
    ([{"anything-but": ["a", "b"]}], ["a", "b"], False),
    # anything-but with a string operator
    ([{"anything-but": {"prefix": "init"}}], "initializing", False),
    ([{"anything-but": {"prefix": "init"}}], "running", True),
    ([{"anything-but": {"suffix": ".tmp"}}], "a.tmp", False),
    ([{"anything-but": {"suffix": ".tmp"}}], "a.txt", True),
    ([{"anything-but": {"equals-ignore-case": "ERROR"}}], "error", False),
    ([{"anything-but": {"equals-ignore-case": "ERROR"}}], "warning", True),
]

NUMERIC = [
    ([{"numeric": ["=", 100]}], 100, True),
    ([{"numeric": ["=", 100]}], 100.0, True),  # numeric compares values, unlike exact matching
    ([{"numeric": ["=", 100]}], 101, False),
    ([{"numeric": ["=", 100]}], "100", False),  # strings are never numbers
    ([{"numeric": [">", 10, "<=", 20]}], 10, False),
    ([{"numeric": [">", 10, "<=", 20]}], 10.5, True),
    ([{"numeric": [">", 10, "<=", 20]}], 20, True),
    ([{"numeric": [">", 10, "<=", 20]}], 20.01, False),
    ([{"numeric": [">=", 10, "<", 20]}], 10, True),
    ([{"numeric": [">=", 10, "<", 20]}], 20, False),
    ([{"numeric": ["<", 20, ">=", 10]}], 15, True),  # bounds in either order
    ([{"numeric": ["<", 0]}], -0.5, True),
    ([{"numeric": ["<", 0]}], 0, False),
    ([{"numeric": [">", 0]}], True, False),  # booleans are not numbers
    ([{"numeric": [">", 0]}], None, False),
    ([{"numeric": [">", 0]}], ABSENT, False),
    ([{"numeric": [">", 0]}], [-1, 3], True),
    ([{"numeric": [">", 0]}], [-1, -3], False),
    ([{"numeric": [">", 100]}, {"anything-but": "101"}], "42", True),  # AWS-recorded: string "42" kept
    ([{"numeric": [">", 100]}, {"anything-but": "101"}], "101", False),
]

EXISTS = [
    ([{"exists": True}], "x", True),
    ([{"exists": True}], None, True),
    ([{"exists": True}], ABSENT, False),
    ([{"exists": True}], {"nested": 1}, False),  # exists tests leaves, not objects
    ([{"exists": True}], [], False),
    ([{"exists": True}], UNDECODABLE, True),
    ([{"exists": False}], ABSENT, True),
    ([{"exists": False}], "x", False),
    ([{"exists": False}], None, False),
    ([{"exists": False}], {"nested": 1}, True),  # AWS-recorded: an object field is no leaf
    ([{"exists": False}], [], True),
]

STRINGS = [
    ([{"prefix": "us-"}], "us-east-1", True),
    ([{"prefix": "us-"}], "eu-west-1", False),
    ([{"prefix": "us-"}], "US-east-1", False),
    ([{"prefix": "1"}], 123, False),  # numbers are not strings
    ([{"prefix": "us-"}], ["eu-west-1", "us-west-2"], True),
    ([{"prefix": "He"}], NotJsonText("Hello"), True),
    ([{"suffix": ".png"}], "cat.png", True),
    ([{"suffix": ".png"}], "cat.PNG", False),
    ([{"suffix": ".png"}], None, False),
    ([{"equals-ignore-case": "alice"}], "ALICE", True),
    ([{"equals-ignore-case": "alice"}], "Alicia", False),
    ([{"equals-ignore-case": "1"}], 1, False),
    # matchers of different kinds in one array are OR'd
    (["a", {"prefix": "b"}, {"numeric": [">", 10]}], "bee", True),
    (["a", {"prefix": "b"}, {"numeric": [">", 10]}], 11, True),
    (["a", {"prefix": "b"}, {"numeric": [">", 10]}], "cee", False),
    ([{"exists": True}, {"exists": False}], ABSENT, True),
]


@pytest.mark.parametrize(("matchers", "value", "expected"), EXACT + ANYTHING_BUT + NUMERIC + EXISTS + STRINGS)
def test_leaf_matcher(matchers: list[Any], value: Any, expected: bool) -> None:
    assert leaf_matches(matchers, value) is expected
