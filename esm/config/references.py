"""Checks across entries: names are unique and every mapping's function exists."""

from __future__ import annotations

from collections.abc import Sequence

from esm.config.mapping import EventSourceMappingConfig
from esm.config.mapping_checks import Problem


def reference_problems(
    function_names: Sequence[tuple[int, str]],
    mappings: Sequence[tuple[int, EventSourceMappingConfig]],
    all_functions_known: bool = True,
) -> list[Problem]:
    """Problems across entries, given (index, name) of each function and (index, mapping) of each mapping.

    `all_functions_known` is False when some function entry has no readable name: then "not defined"
    would be a follow-on error of that entry's own problem, so it is not reported.
    """
    problems: list[Problem] = []
    first_function: dict[str, int] = {}
    for index, name in function_names:
        if name in first_function:
            where = f"Functions[{first_function[name]}]"
            problems.append(
                (("Functions", index, "FunctionName"), f"duplicate function {name!r}, also {where}")
            )
        first_function.setdefault(name, index)

    first_pair: dict[tuple[str, str], int] = {}
    first_uuid: dict[str, int] = {}
    for index, mapping in mappings:
        name_field = "FunctionName" if mapping.FunctionName is not None else "FunctionArn"
        if all_functions_known and mapping.function_name not in first_function:
            problems.append(
                (
                    ("EventSourceMappings", index, name_field),
                    f"function {mapping.function_name!r} is not defined in Functions",
                )
            )
        pair = (mapping.function_name, mapping.source.identity)
        if pair in first_pair:
            problems.append(
                (
                    ("EventSourceMappings", index),
                    f"same function {mapping.function_name!r} and event source "
                    f"as EventSourceMappings[{first_pair[pair]}]",
                )
            )
        elif mapping.uuid in first_uuid:  # a same pair also derives the same UUID: reported once, above
            problems.append(
                (
                    ("EventSourceMappings", index, "UUID"),
                    f"duplicate UUID {mapping.uuid!r}, also EventSourceMappings[{first_uuid[mapping.uuid]}]",
                )
            )
        first_pair.setdefault(pair, index)
        first_uuid.setdefault(mapping.uuid, index)
    return problems
