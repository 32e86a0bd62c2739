"""NOT SUPPORTED YET: the one place listing what esm accepts only at AWS's default for now.

Each restricted parameter is a typed field of `EventSourceMappingConfig` (range-checked as AWS
does); while its entry is here, any value but the default is rejected. Implementing one means
deleting its entry, nothing else in the config package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from esm.config.sources import DynamoDBStreamsSource, EventSource, KinesisSource, MskSource


@dataclass(frozen=True)
class Restriction:
    accepts: Callable[[Any], bool]
    default_text: str
    """How the accepted default reads in the message: `(only <default_text> is accepted)`."""


NOT_SUPPORTED_YET: Mapping[str, Restriction] = {
    "ParallelizationFactor": Restriction(lambda value: value == 1, "1"),
    "TumblingWindowInSeconds": Restriction(lambda value: value == 0, "0"),
}

SOURCES_NOT_SUPPORTED_YET: Mapping[type[EventSource], str] = {
    KinesisSource: "Kinesis",
    DynamoDBStreamsSource: "DynamoDB Streams",
    MskSource: "Amazon MSK",
}


def restriction_message(field: str) -> str:
    return f"not supported yet (only {NOT_SUPPORTED_YET[field].default_text} is accepted)"


def source_message(source: EventSource) -> str | None:
    """Why this source cannot run yet, or None when it can."""
    kind = SOURCES_NOT_SUPPORTED_YET.get(type(source))
    return None if kind is None else f"{kind} event sources are not supported yet"
