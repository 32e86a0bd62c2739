"""Turning validation failures into the one-line problems users read.

Every problem names its place (`EventSourceMappings[0].BatchSize`) and what was wrong, in esm's
own wording: pydantic's default messages and documentation URLs never reach the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from esm.config.field_names import field_names_at
from esm.config.suggestions import did_you_mean

Location = tuple[int | str, ...]

_BUILTIN_ERROR_TYPES = frozenset(get_args(ErrorType))
# A longer value is quoted up to here in problems: a problem is one line, whatever was pasted.
_LONGEST_QUOTED = 80

# pydantic's built-in error kinds that can reach users, in esm's wording ({got} is the value).
_BUILTIN_MESSAGES: dict[str, str] = {
    "missing": "is required",
    "model_type": "expected a mapping, got {got}",
    "model_attributes_type": "expected a mapping, got {got}",
    "dict_type": "expected a mapping, got {got}",
    "list_type": "expected a list, got {got}",
    "tuple_type": "expected a list, got {got}",
    "string_type": "expected a string, got {got}",
    "int_type": "expected an integer, got {got}",
    "int_parsing": "expected an integer, got {got}",
    "int_from_float": "expected an integer, got {got}",
    "float_type": "expected a number, got {got}",
    "float_parsing": "expected a number, got {got}",
    "finite_number": "must be a finite number, got {got}",
    "bool_type": "expected true or false, got {got}",
    "bool_parsing": "expected true or false, got {got}",
}


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def problem(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose message is already final (no pydantic template expansion).

    Kinds get an `esm_` prefix so they never collide with pydantic's built-in ones (`enum`, ...).
    """
    return PydanticCustomError(kind if kind.startswith("esm_") else f"esm_{kind}", message)


def describe(value: object) -> str:
    """A value as the user wrote it in YAML/JSON, for `got ...` in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        if len(value) > _LONGEST_QUOTED:
            return f"{value[:_LONGEST_QUOTED]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def format_number(value: float) -> str:
    """`300` rather than `300.0`: bounds and values read as the user wrote them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_location(loc: Location, source: str) -> str:
    """`('EventSourceMappings', 0, 'BatchSize')` -> `EventSourceMappings[0].BatchSize`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:  # dotted Kafka property names and other keys that are not plain words
            text += f"[{part!r}]"
    return text or source


def format_error(error: Any, source: str, model: type[BaseModel] | None = None) -> str:
    """One pydantic error (an `ErrorDetails` dict) as an esm problem line; `model`, the validated
    root, lets an unknown field name the known one it is closest to."""
    loc: Location = tuple(error["loc"])
    kind: str = error["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        hint = did_you_mean(name, field_names_at(model, loc[:-1])) if model is not None else ""
        return f"{format_location(loc[:-1], source)}: unknown field {name!r}{hint}"
    template = _BUILTIN_MESSAGES.get(kind)
    message = template.format(got=describe(error["input"])) if template else str(error["msg"])
    return f"{format_location(loc, source)}: {message}"


def format_validation_error(
    error: ValidationError, source: str, model: type[BaseModel] | None = None
) -> list[str]:
    """Every error as a line, in file order: top-level settings, then each function, then each mapping."""
    details = sorted(error.errors(include_url=False), key=lambda detail: _file_order(tuple(detail["loc"])))
    return [format_error(detail, source, model) for detail in details]


_SECTION_ORDER = {"Functions": 1, "EventSourceMappings": 2}


def _file_order(loc: Location) -> tuple[int, int]:
    if len(loc) >= 2 and isinstance(loc[1], int):
        return _SECTION_ORDER.get(str(loc[0]), 0), loc[1]
    return 0, -1


def raise_combined(error: ValidationError | None, extra: Sequence[tuple[Location, str]]) -> NoReturn:
    """Raise one ValidationError holding a failed validation's errors plus cross-field problems.

    Used by wrap validators so that cross-field checks are reported alongside field errors in the
    same pass instead of only once every field is valid.
    """
    details: list[InitErrorDetails] = []
    if error is not None:
        for item in error.errors(include_url=False):
            kind = item["type"]
            if kind in _BUILTIN_ERROR_TYPES:
                details.append(
                    InitErrorDetails(type=kind, loc=item["loc"], input=item["input"], ctx=item.get("ctx", {}))
                )
            else:  # custom errors carry their final message already
                details.append(
                    InitErrorDetails(type=problem(kind, item["msg"]), loc=item["loc"], input=item["input"])
                )
    for loc, message in extra:
        details.append(InitErrorDetails(type=problem("config", message), loc=loc, input=None))
    raise ValidationError.from_exception_data("config", details)
