"""Reading a config file into plain data: JSON by extension, YAML otherwise.

Syntax errors carry `path:line:column`. A key written twice in one mapping is an error too, since
both parsers would otherwise keep the last one silently. A file over `MAX_CONFIG_BYTES` is refused
before it is parsed: no real config comes near it, and parsing and reporting on megabytes of
pasted data would only bury the mistake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from esm.config.problems import ConfigError

MAX_CONFIG_BYTES = 4 * 1024 * 1024


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_document(path: Path) -> object:
    """The file's data, or ConfigError naming the file (and line) for a missing or unreadable file."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            limit = MAX_CONFIG_BYTES // (1024 * 1024)
            raise ConfigError([f"{path}: the file is larger than {limit} MiB, the most a config may be"])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read: {error}"]) from None
    if path.suffix.lower() == ".json":
        return _parse_json(text, path)
    return _parse_yaml(text, path)


def _parse_json(text: str, path: Path) -> object:
    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        raise ConfigError([f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}"]) from None
    except ValueError as error:  # a duplicate key; json gives no position for it
        raise ConfigError([f"{path}: invalid JSON: {error}"]) from None


def _parse_yaml(text: str, path: Path) -> object:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = ": ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError([f"{where}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{path}: invalid YAML: {error}"]) from None
