"""Loading the config once at start, and `esm validate`.

`load_config` reads a file; `parse_config` validates data already in memory. Both return the
frozen `EsmConfig` with the warnings for AWS-only settings, or raise `ConfigError` listing every
problem found in one pass.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from esm.config.aws_fields import aws_only_warning
from esm.config.documents import read_document
from esm.config.mapping import EventSourceMappingConfig
from esm.config.model import EsmConfig
from esm.config.problems import ConfigError, format_validation_error


@dataclass(frozen=True)
class LoadedConfig:
    config: EsmConfig
    warnings: list[str] = field(default_factory=list)
    """Settings accepted but ignored, one line each, to print or log."""


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate a YAML or JSON config file (JSON when it ends in .json)."""
    path = Path(path)
    data = read_document(path)
    if data is None:
        raise ConfigError([f"{path}: the file is empty"])
    return parse_config(data, source=str(path))


def parse_config(data: object, source: str = "<config>") -> LoadedConfig:
    """Validate config data (as parsed from YAML/JSON); `source` names it in top-level problems."""
    try:
        config = EsmConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, EsmConfig)) from None
    warnings = [
        aws_only_warning(f"EventSourceMappings[{index}]", setting)
        for index, mapping in enumerate(config.EventSourceMappings)
        for setting in mapping.aws_only_settings()
    ]
    return LoadedConfig(config=config, warnings=warnings)


def parse_mapping(document: object, source: str = "mapping") -> EventSourceMappingConfig:
    """One mapping's document (AWS fields, as a control-API request or a config entry holds
    them), checked by the same rules as a config file; ConfigError lists every problem."""
    try:
        return EventSourceMappingConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source, EventSourceMappingConfig)) from None


def validate_command(path: str) -> int:
    """`esm validate`: print OK and a summary (exit 0), or every problem one per line (exit 1)."""
    try:
        loaded = load_config(path)
    except ConfigError as error:
        for problem in error.problems:
            print(problem)
        return 1
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    functions, mappings = len(loaded.config.Functions), len(loaded.config.EventSourceMappings)
    print(f"OK: {functions} function{'s' * (functions != 1)}, {mappings} mapping{'s' * (mappings != 1)}")
    return 0
