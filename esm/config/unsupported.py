"""NOT SUPPORTED YET: the one place listing the event sources esm parses but cannot run yet.

Implementing one means deleting its entry, nothing else in the config package.
"""

from __future__ import annotations

from collections.abc import Mapping

from esm.config.sources import EventSource, MskSource

SOURCES_NOT_SUPPORTED_YET: Mapping[type[EventSource], str] = {
    MskSource: "Amazon MSK",
}


def source_message(source: EventSource) -> str | None:
    """Why this source cannot run yet, or None when it can."""
    kind = SOURCES_NOT_SUPPORTED_YET.get(type(source))
    return None if kind is None else f"{kind} event sources are not supported yet"
