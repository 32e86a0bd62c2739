"""The whole configuration: store, metrics endpoint, functions and mappings. Frozen once loaded."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Self

from pydantic import ModelWrapValidatorHandler, ValidationError, model_validator

from esm.config.arns import FUNCTION_NAME_PATTERN
from esm.config.base import ConfigModel
from esm.config.constraints import StrictFloat, StrictInt, StrictStr, between, greater_than_zero, validated_by
from esm.config.control_api import ControlApiConfig
from esm.config.function import FunctionConfig
from esm.config.mapping import EventSourceMappingConfig
from esm.config.problems import raise_combined
from esm.config.references import reference_problems
from esm.config.store_url import DEFAULT_STORE, check_store_url
from esm.config.tracing import TracingConfig


class MetricsEndpoint(ConfigModel):
    Port: Annotated[StrictInt, between(1, 65535)] | None = 9108
    """Port of the Prometheus /metrics endpoint; null disables it. Default: 9108."""
    Host: StrictStr = "0.0.0.0"
    """Address the metrics endpoint binds to. Default: 0.0.0.0."""


class EsmConfig(ConfigModel):
    Store: Annotated[StrictStr, validated_by(check_store_url, "store")] = DEFAULT_STORE
    """Where leases, checkpoints and permits live: `sqlite:///PATH` (relative), `sqlite:////abs/path.db`,
    or `redis://HOST:PORT/DB` for several hosts. Default: sqlite:///esm-state.db."""
    Metrics: MetricsEndpoint = MetricsEndpoint()
    """`{Port, Host}` of the Prometheus endpoint. Default: port 9108 on 0.0.0.0."""
    ShutdownGracePeriodSeconds: Annotated[StrictFloat, greater_than_zero()] = 30.0
    """On stop, how long in-flight batches may finish before they are cancelled. Default: 30."""
    LeaseDurationSeconds: Annotated[StrictFloat, between(1, 3600)] = 10.0
    """Kinesis and DynamoDB Streams: how long a shard lease lasts unless renewed (renewed every
    third of it); a stopped poller's shards are taken over this long after its last renewal.
    Default: 10 (KCL's failover time)."""
    PermitLeaseSeconds: Annotated[StrictFloat, between(1, 3600)] = 5.0
    """Functions with ReservedConcurrentExecutions, when the limit is held in the Store: how long a
    concurrency permit lasts unless renewed (its holder renews it every third of it while the
    invocation runs, however long), so a dead or cut-off host's permits free themselves this long
    after its last renewal. Default: 5."""
    ShardDiscoveryIntervalSeconds: Annotated[StrictFloat, between(1, 3600)] = 30.0
    """Kinesis and DynamoDB Streams: how often the stream's shards are listed to find new ones
    (child shards are also found at once when their parent ends). Default: 30."""
    Functions: tuple[FunctionConfig, ...] = ()
    """The functions and their workers. Default: none."""
    EventSourceMappings: tuple[EventSourceMappingConfig, ...] = ()
    """The mappings; each names a function defined in Functions. Default: none."""
    ControlApi: ControlApiConfig | None = None
    """Lambda's API for event source mappings (boto3, the aws CLI), signed with SigV4; mappings
    created through it live in the Store and run on every daemon sharing it. Default: off."""
    Tracing: TracingConfig | None = None
    """`{Endpoint, SampleRatio, ServiceName}`: a trace per batch, exported over OTLP/HTTP to
    `<Endpoint>/v1/traces`, its context handed to the handler. Default: off (no span is built)."""

    def function(self, name: str) -> FunctionConfig:
        """The function called `name`; KeyError if there is none."""
        for function in self.Functions:
            if function.FunctionName == name:
                return function
        raise KeyError(f"no function named {name!r} in Functions")

    @model_validator(mode="wrap")
    @classmethod
    def _check_references(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            config = handler(data)
        except ValidationError as error:
            if not isinstance(data, Mapping):
                raise
            # Still check references among the entries that are valid on their own, in the same pass.
            # A function entry with other problems still counts as defined: it is reported on its own.
            raw_functions = data.get("Functions", ())
            names = _raw_function_names(raw_functions)
            all_known = isinstance(raw_functions, Sequence) and len(names) == len(raw_functions)
            mappings = _valid_mappings(data.get("EventSourceMappings"))
            raise_combined(error, reference_problems(names, mappings, all_known))
        names = [(index, function.FunctionName) for index, function in enumerate(config.Functions)]
        problems = reference_problems(names, list(enumerate(config.EventSourceMappings)))
        if problems:
            raise_combined(None, problems)
        return config


def _entries(entries: object) -> list[tuple[int, object]]:
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        return []
    return list(enumerate(entries))


def _raw_function_names(entries: object) -> list[tuple[int, str]]:
    """(index, name) of the function entries whose name is valid, whatever their other fields."""
    names = []
    for index, entry in _entries(entries):
        name = entry.get("FunctionName") if isinstance(entry, Mapping) else None
        if isinstance(name, str) and re.fullmatch(FUNCTION_NAME_PATTERN, name):
            names.append((index, name))
    return names


def _valid_mappings(entries: object) -> list[tuple[int, EventSourceMappingConfig]]:
    valid = []
    for index, entry in _entries(entries):
        try:
            valid.append((index, EventSourceMappingConfig.model_validate(entry)))
        except ValidationError:
            continue  # already reported by the full validation
    return valid
