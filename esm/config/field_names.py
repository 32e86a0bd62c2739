"""Which field names a config model accepts at a place in the document, for "did you mean".

Pure type walking: from the root model, each part of an error's location steps into a field's
type (a model's field by name, a list's element by index, a mapping's value by key), looking
through Optional, unions and Annotated.
"""

from __future__ import annotations

import types
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel


def field_names_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The names the model(s) at `loc` accept; [] when `loc` leads to no model."""
    current: list[object] = [root]
    for part in loc:
        current = [step for kind in current for step in _step(kind, part)]
    return [name for kind in current for name in _fields_of(kind)]


def _step(kind: object, part: int | str) -> list[object]:
    found: list[object] = []
    for concrete in _concrete(kind):
        origin = get_origin(concrete)
        if isinstance(part, str) and isinstance(concrete, type) and issubclass(concrete, BaseModel):
            field = concrete.model_fields.get(part)
            if field is not None:
                found.append(field.annotation)
        elif isinstance(part, str) and origin is dict:
            found.append(get_args(concrete)[1])
        elif isinstance(part, int) and origin in (tuple, list):
            found.append(get_args(concrete)[0])
    return found


def _concrete(kind: object) -> list[object]:
    """`kind` without Annotated and unions: the types a value may actually have."""
    origin = get_origin(kind)
    if origin is Annotated:
        return _concrete(get_args(kind)[0])
    if origin is Union or origin is types.UnionType:
        return [concrete for member in get_args(kind) for concrete in _concrete(member)]
    return [kind]


def _fields_of(kind: object) -> list[str]:
    return [
        name
        for concrete in _concrete(kind)
        if isinstance(concrete, type) and issubclass(concrete, BaseModel)
        for name in concrete.model_fields
    ]
