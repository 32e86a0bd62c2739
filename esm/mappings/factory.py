"""Building a mapping's runner from its config: the one place that turns a mapping's settings into
the engine's parts (reader settings, batch limits, failure policy, destination, lease timing).
The poller (the composition root) owns the factory; nothing below it reads the config.

`settings(mapping)` is the part of a mapping that can change while it runs (a control-API
update): batch limits, failure policy and handling, and the function. Anything else changed
(ParallelizationFactor, windows, consumer properties) restarts the runner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from esm.config import (
    DynamoDBStreamsSource,
    EsmConfig,
    EventSourceMappingConfig,
    KafkaClient,
    KafkaSource,
    KinesisSource,
)
from esm.destinations import open_destination
from esm.dispatch.invoker import FunctionInvoker
from esm.mappings.failure_handling import FailureHandling
from esm.mappings.kafka import KafkaMappingRunner
from esm.mappings.stream_flavors import DYNAMODB_STREAMS, KINESIS
from esm.mappings.stream_shard import StreamShardSettings
from esm.mappings.streams import StreamMappingRunner
from esm.metrics import Metrics
from esm.ownership.lease_coordinator import LeaseTiming
from esm.ownership.leases import lease_namespace
from esm.shard.batching import BatchLimits
from esm.shard.failures import Backoff, FailurePolicy
from esm.sources.aws_clients import stream_reader_client
from esm.sources.kafka import KafkaGroupReader, ReaderSettings
from esm.sources.kafka_group import GroupReader
from esm.sources.stream_discovery import resolve_stream_arn
from esm.sources.stream_shards import StartPosition
from esm.stores import Store
from esm.tracing.batch import BatchTracing

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

# kafka-python settings esm owns; a mapping's KafkaConsumerConfig cannot set them.
_AUTO_OFFSET_RESET = {"TRIM_HORIZON": "earliest", "LATEST": "latest", "AT_TIMESTAMP": "earliest"}


DEFAULT_ASSIGNMENT_STRATEGY = ("cooperative-sticky",)


def holder_id() -> str:
    """This poller process, as owner of leases, permits and status reports."""
    return f"{socket.gethostname()}:{os.getpid()}"


def reader_settings(mapping: EventSourceMappingConfig, source: KafkaSource) -> ReaderSettings:
    position = mapping.starting_position.value
    kwargs: dict[str, Any] = dict(mapping.kafka_consumer_kwargs())
    # Incremental rebalancing: a member joining or leaving moves only the partitions that change
    # owner, the others keep flowing. `partition.assignment.strategy: range` restores eager.
    kwargs.setdefault("partition_assignment_strategy", DEFAULT_ASSIGNMENT_STRATEGY)
    kwargs.update(
        bootstrap_servers=list(source.bootstrap_servers),
        group_id=source.consumer_group_id,
        enable_auto_commit=False,
        auto_offset_reset=_AUTO_OFFSET_RESET[position],
        client_id=kwargs.get("client_id", f"esm-{mapping.uuid[:8]}"),
    )
    start: str | int = kwargs["auto_offset_reset"]
    timestamp = mapping.starting_position_timestamp
    if position == "AT_TIMESTAMP" and timestamp is not None:
        start = int(timestamp.timestamp() * 1000)
    # ESM_KAFKA_COMMIT_ON_REVOKE=false restores the behaviour before commits on revoke, for
    # benchmarks/hosts_failover.py to measure against; not a setting to run with.
    commit_on_revoke = os.environ.get("ESM_KAFKA_COMMIT_ON_REVOKE", "true").lower() != "false"
    return ReaderSettings(
        topic=source.topic,
        consumer_kwargs=kwargs,
        start=start,
        label=f"mapping {mapping.uuid} (function {mapping.function_name})",
        commit_on_revoke=commit_on_revoke,
    )


def failure_policy(mapping: EventSourceMappingConfig, bisect: bool = True) -> FailurePolicy:
    """`bisect`: False where batches cannot be split (tumbling windows carry state across them)."""
    return FailurePolicy(
        maximum_retry_attempts=mapping.MaximumRetryAttempts,
        maximum_record_age_seconds=mapping.MaximumRecordAgeInSeconds,
        bisect_on_function_error=mapping.BisectBatchOnFunctionError and bisect,
        function_error_backoff=Backoff(initial_seconds=1.0, cap_seconds=mapping.MaximumRetryBackoffInSeconds),
    )


def stream_start(mapping: EventSourceMappingConfig) -> StartPosition:
    position = mapping.starting_position.value
    if position == "LATEST":
        return StartPosition.latest()
    timestamp = mapping.starting_position_timestamp
    if position == "AT_TIMESTAMP" and timestamp is not None:
        return StartPosition.at_timestamp(timestamp.timestamp())
    return StartPosition.trim_horizon()


def reader_class(mapping: EventSourceMappingConfig) -> type[GroupReader[Any]]:
    if mapping.KafkaClient is KafkaClient.CONFLUENT_KAFKA:
        from esm.sources.kafka_confluent import ConfluentGroupReader

        return ConfluentGroupReader
    return KafkaGroupReader


@dataclass(frozen=True)
class RunningSettings:
    """What a running mapping takes from its config, and may take again (esm.mappings.live)."""

    limits: BatchLimits
    policy: FailurePolicy
    failure_handling: FailureHandling
    invoker: FunctionInvoker


class MappingRunner(Protocol):
    mapping_id: str

    def start(self) -> None: ...
    async def shutdown(self, deadline: float) -> None: ...
    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]: ...
    def reconfigure(
        self,
        limits: BatchLimits,
        policy: FailurePolicy,
        failure_handling: FailureHandling,
        invoker: FunctionInvoker,
    ) -> None: ...


class RunnerFactory:
    def __init__(
        self,
        config: EsmConfig,
        store: Store,
        metrics: Metrics,
        invokers: Mapping[str, FunctionInvoker],
        tracer: Tracer | None = None,
    ) -> None:
        """`tracer`: only when `Tracing` is configured (each mapping's batches are traced)."""
        self._config = config
        self._store = store
        self._metrics = metrics
        self._invokers = invokers
        self._tracer = tracer

    def _tracing(self, mapping: EventSourceMappingConfig) -> BatchTracing | None:
        if self._tracer is None:
            return None
        return BatchTracing(self._tracer, mapping.uuid, mapping.function_name, mapping.source.identity)

    async def build(self, mapping: EventSourceMappingConfig) -> MappingRunner:
        source = mapping.source
        if isinstance(source, KafkaSource):
            return self._kafka_runner(mapping, source)
        if isinstance(source, (KinesisSource, DynamoDBStreamsSource)):
            return await self._stream_runner(mapping, source)
        raise NotImplementedError(f"mapping {mapping.uuid}: {type(source).__name__} is not supported yet")

    def settings(self, mapping: EventSourceMappingConfig) -> RunningSettings:
        invoker = self._invokers[mapping.function_name]
        source = mapping.source
        servers = source.bootstrap_servers if isinstance(source, KafkaSource) else None
        windows = not isinstance(source, KafkaSource) and mapping.TumblingWindowInSeconds > 0
        return RunningSettings(
            limits=BatchLimits(mapping.batch_size, mapping.batching_window_seconds),
            policy=failure_policy(mapping, bisect=not windows),
            failure_handling=self._failure_handling(mapping, invoker, servers),
            invoker=invoker,
        )

    def _failure_handling(
        self,
        mapping: EventSourceMappingConfig,
        invoker: FunctionInvoker,
        kafka_servers: tuple[str, ...] | None,
    ) -> FailureHandling:
        uri = mapping.on_failure_destination
        return FailureHandling(
            record_filter=mapping.record_filter(),
            report_batch_item_failures=mapping.report_batch_item_failures,
            destination=open_destination(uri, kafka_servers) if uri else None,
            function_arn=invoker.function.arn,
            include_payload=mapping.include_payload_in_failures,
        )

    def _kafka_runner(self, mapping: EventSourceMappingConfig, source: KafkaSource) -> KafkaMappingRunner:
        running = self.settings(mapping)
        log.info(
            "mapping %s: %s topic %s -> function %s (group %s, %d lanes per partition)",
            mapping.uuid,
            ",".join(source.bootstrap_servers),
            source.topic,
            mapping.function_name,
            source.consumer_group_id,
            mapping.ParallelizationFactor,
        )
        return KafkaMappingRunner(
            mapping_id=mapping.uuid,
            reader_settings=reader_settings(mapping, source),
            reader_class=reader_class(mapping),
            bootstrap_servers=source.bootstrap_servers,
            limits=running.limits,
            invoker=running.invoker,
            policy=running.policy,
            metrics=self._metrics,
            failure_handling=running.failure_handling,
            lanes=mapping.ParallelizationFactor,
            tracing=self._tracing(mapping),
        )

    async def _stream_runner(
        self, mapping: EventSourceMappingConfig, source: KinesisSource | DynamoDBStreamsSource
    ) -> StreamMappingRunner:
        flavor = KINESIS if isinstance(source, KinesisSource) else DYNAMODB_STREAMS
        # Building a client may read credentials from the network (instance roles): not on the loop.
        client = await asyncio.to_thread(stream_reader_client, flavor.client_service, source.region)
        if isinstance(source, KinesisSource) and source.consumer_name is not None:
            log.warning(
                "mapping %s: enhanced fan-out (consumer %s) is not supported; polling its stream instead",
                mapping.uuid,
                source.consumer_name,
            )
        if mapping.TumblingWindowInSeconds and mapping.BisectBatchOnFunctionError:
            log.warning(
                "mapping %s: BisectBatchOnFunctionError does not apply with TumblingWindowInSeconds "
                "(a window's state runs through its batches in order)",
                mapping.uuid,
            )
        stream_arn = await asyncio.to_thread(resolve_stream_arn, source)
        running = self.settings(mapping)
        handling = running.failure_handling
        settings = StreamShardSettings(
            flavor=flavor,
            stream_arn=stream_arn,
            namespace=lease_namespace(mapping.uuid, stream_arn),
            owner=holder_id(),
            start=stream_start(mapping),
            limits=running.limits,
            lanes=mapping.ParallelizationFactor,
            window_seconds=mapping.TumblingWindowInSeconds,
            polling_interval_seconds=mapping.polling_interval_seconds,
            idle_polling_interval_seconds=mapping.idle_polling_interval_seconds,
            record_filter=handling.record_filter,
            report_batch_item_failures=handling.report_batch_item_failures,
            policy=running.policy,
            role_arn=self._config.function(mapping.function_name).Role or "",
        )
        log.info(
            "mapping %s: %s %s -> function %s (%d lanes per shard%s)",
            mapping.uuid,
            flavor.name,
            stream_arn,
            mapping.function_name,
            mapping.ParallelizationFactor,
            f", {mapping.TumblingWindowInSeconds}s tumbling windows"
            if mapping.TumblingWindowInSeconds
            else "",
        )
        return StreamMappingRunner(
            mapping_id=mapping.uuid,
            function_name=mapping.function_name,
            flavor=flavor,
            settings=settings,
            client=client,
            lister=flavor.make_lister(client, stream_arn),
            leases=self._store.leases,
            timing=LeaseTiming(self._config.LeaseDurationSeconds, self._config.ShardDiscoveryIntervalSeconds),
            invoker=running.invoker,
            metrics=self._metrics,
            failure_handling=handling,
            status=self._store.status,
            tracing=self._tracing(mapping),
        )
