"""What a matcher can find at a pattern's field, beyond plain JSON values."""

from __future__ import annotations

from typing import Any, Final


class NotJsonText(str):
    """Record data that is UTF-8 text but not JSON. Leaf matchers see the string; nested
    patterns never match it (Lambda drops a record whose plain-text data a pattern looks into)."""

    __slots__ = ()


class _Undecodable:
    """Record data that is not UTF-8: present (for exists and anything-but), equal to nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDECODABLE"


UNDECODABLE: Final = _Undecodable()

# The value of a field the record does not have.
MISSING: Final = object()


def exact_key(value: Any) -> tuple[type, Any]:
    """Exact matching is on JSON type and value: the key keeps True apart from 1, 300 from
    300.0 and "300" from 300, while plain-text data compares as the string it is."""
    kind = type(value)
    return (str if kind is NotJsonText else kind, value)
