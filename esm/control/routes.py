"""Which Lambda operation an HTTP request is (the REST paths of API version 2015-03-31). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from esm.control.errors import ApiError

_PREFIX = "/2015-03-31"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/event-source-mappings/?"), "CreateEventSourceMapping"),
    ("GET", re.compile(r"/event-source-mappings/?"), "ListEventSourceMappings"),
    ("GET", re.compile(r"/event-source-mappings/(?P<id>[^/]+)/?"), "GetEventSourceMapping"),
    ("PUT", re.compile(r"/event-source-mappings/(?P<id>[^/]+)/?"), "UpdateEventSourceMapping"),
    ("DELETE", re.compile(r"/event-source-mappings/(?P<id>[^/]+)/?"), "DeleteEventSourceMapping"),
    ("GET", re.compile(r"/functions/?"), "ListFunctions"),
    ("GET", re.compile(r"/functions/(?P<id>[^/]+)/?"), "GetFunction"),
]


@dataclass(frozen=True)
class Route:
    operation: str
    # The UUID or function name in the path, decoded.
    resource: str | None
    # Query parameters: the first value of each.
    query: dict[str, str]


def route(method: str, raw_path: str, raw_query: str) -> Route:
    """The operation; ApiError (UnknownOperationException, 404) for anything else."""
    if raw_path.startswith(_PREFIX):
        rest = raw_path[len(_PREFIX) :]
        for verb, pattern, operation in _ROUTES:
            match = pattern.fullmatch(rest)
            if match is not None and verb == method.upper():
                resource = match.groupdict().get("id")
                query = {
                    key: values[0] for key, values in parse_qs(raw_query, keep_blank_values=True).items()
                }
                return Route(operation, unquote(resource) if resource else None, query)
    raise ApiError("UnknownOperationException", f"No operation for {method.upper()} {raw_path}")
