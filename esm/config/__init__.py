"""The configuration: one validated, frozen model read once at start (AWS parameter names)."""

from esm.config.function import FunctionConfig
from esm.config.loader import LoadedConfig, load_config, parse_config, parse_mapping, validate_command
from esm.config.mapping import EventSourceMappingConfig
from esm.config.mapping_parts import KafkaClient, StartingPosition
from esm.config.model import EsmConfig, MetricsEndpoint
from esm.config.problems import ConfigError
from esm.config.sources import DynamoDBStreamsSource, EventSource, KafkaSource, KinesisSource, MskSource

__all__ = [
    "ConfigError",
    "DynamoDBStreamsSource",
    "EsmConfig",
    "EventSource",
    "EventSourceMappingConfig",
    "FunctionConfig",
    "KafkaClient",
    "KafkaSource",
    "KinesisSource",
    "LoadedConfig",
    "MetricsEndpoint",
    "MskSource",
    "StartingPosition",
    "load_config",
    "parse_config",
    "parse_mapping",
    "validate_command",
]
