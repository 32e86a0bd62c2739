"""The error an invalid pattern raises, and the position it names."""

from __future__ import annotations

import json
from typing import Any


class FilterPatternError(ValueError):
    """An invalid pattern; `index` is the filter's position, `path` the dotted field inside it.

    str(error) reads like `Filters[1].Pattern.value.price: numeric expects numbers, got "x"`.
    """

    def __init__(self, index: int, path: str, message: str) -> None:
        self.index = index
        self.path = path
        self.message = message
        where = f"Filters[{index}].Pattern" + (f".{path}" if path else "")
        super().__init__(f"{where}: {message}")


class PatternLocation:
    """Where the compiler is inside a pattern, so its errors can say so."""

    __slots__ = ("index", "names")

    def __init__(self, index: int, names: tuple[str, ...] = ()) -> None:
        self.index = index
        self.names = names

    def child(self, name: str) -> PatternLocation:
        return PatternLocation(self.index, (*self.names, name))

    def error(self, message: str) -> FilterPatternError:
        return FilterPatternError(self.index, ".".join(self.names), message)


def show(value: Any) -> str:
    """A value as the user wrote it (JSON), for error messages."""
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)
