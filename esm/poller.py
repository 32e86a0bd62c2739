"""One poller process: every enabled mapping's runner, the function invokers, two-phase shutdown.

This is the composition root of a poller process: it builds the collaborators from the config
and hands them to each other; nothing below it reads the config.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any, Protocol

from esm.config import (
    DynamoDBStreamsSource,
    EsmConfig,
    EventSourceMappingConfig,
    KafkaClient,
    KafkaSource,
    KinesisSource,
)
from esm.destinations import open_destination
from esm.dispatch.endpoints import EndpointPool
from esm.dispatch.invoker import FunctionIdentity, FunctionInvoker
from esm.dispatch.limiter import ConcurrencyLimiter, make_limiter
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
from esm.sources.aws_clients import aws_client
from esm.sources.kafka import KafkaGroupReader, ReaderSettings
from esm.sources.kafka_group import GroupReader
from esm.sources.stream_discovery import resolve_stream_arn
from esm.sources.stream_shards import StartPosition
from esm.stores import Store, StoreError, open_store

log = logging.getLogger(__name__)

# kafka-python settings esm owns; a mapping's KafkaConsumerConfig cannot set them.
_AUTO_OFFSET_RESET = {"TRIM_HORIZON": "earliest", "LATEST": "latest", "AT_TIMESTAMP": "earliest"}


# Shard reports are refreshed this often and expire unless refreshed (owner gone).
STATUS_INTERVAL_SECONDS = 1.0
STATUS_TTL_SECONDS = 5.0


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reader_settings(mapping: EventSourceMappingConfig, source: KafkaSource) -> ReaderSettings:
    position = mapping.starting_position.value
    kwargs: dict[str, Any] = dict(mapping.kafka_consumer_kwargs())
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
    return ReaderSettings(topic=source.topic, consumer_kwargs=kwargs, start=start)


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


class MappingRunner(Protocol):
    mapping_id: str

    def start(self) -> None: ...
    async def shutdown(self, deadline: float) -> None: ...
    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]: ...


class Poller:
    def __init__(self, config: EsmConfig, metrics: Metrics, shared: bool) -> None:
        """`shared`: other poller processes (or hosts) invoke the same functions."""
        self._config = config
        self._metrics = metrics
        self._shared = shared
        self._store: Store | None = None
        self._limiters: list[ConcurrencyLimiter] = []
        self._pools: list[EndpointPool] = []
        self._status_task: asyncio.Task[None] | None = None
        self.runners: list[MappingRunner] = []

    async def start(self) -> None:
        self._store = open_store(self._config.Store)
        invokers: dict[str, FunctionInvoker] = {}
        for function in self._config.Functions:
            limiter = make_limiter(
                function.ReservedConcurrentExecutions,
                self._store,
                function.FunctionName,
                holder_id(),
                float(function.Timeout),
                self._shared,
            )
            pool = EndpointPool(function.Endpoints, time.monotonic)
            self._limiters.append(limiter)
            self._pools.append(pool)
            identity = FunctionIdentity(function.FunctionName, float(function.Timeout), function.MemorySize)
            invokers[function.FunctionName] = FunctionInvoker(identity, pool, limiter, self._metrics)
        for mapping in self._config.EventSourceMappings:
            if not mapping.Enabled:
                log.info("mapping %s is disabled; not polling", mapping.uuid)
                continue
            source = mapping.source
            invoker = invokers[mapping.function_name]
            runner: MappingRunner
            if isinstance(source, KafkaSource):
                runner = self._kafka_runner(mapping, source, invoker)
            elif isinstance(source, (KinesisSource, DynamoDBStreamsSource)):
                runner = await self._stream_runner(mapping, source, invoker)
            else:
                raise NotImplementedError(
                    f"mapping {mapping.uuid}: {type(source).__name__} is not supported yet"
                )
            runner.start()
            self.runners.append(runner)
            self._status_task = self._status_task or asyncio.create_task(
                self._publish_status(), name="status"
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

    def _kafka_runner(
        self, mapping: EventSourceMappingConfig, source: KafkaSource, invoker: FunctionInvoker
    ) -> KafkaMappingRunner:
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
            limits=BatchLimits(mapping.batch_size, mapping.batching_window_seconds),
            invoker=invoker,
            policy=failure_policy(mapping),
            metrics=self._metrics,
            failure_handling=self._failure_handling(mapping, invoker, source.bootstrap_servers),
            lanes=mapping.ParallelizationFactor,
        )

    async def _stream_runner(
        self,
        mapping: EventSourceMappingConfig,
        source: KinesisSource | DynamoDBStreamsSource,
        invoker: FunctionInvoker,
    ) -> StreamMappingRunner:
        assert self._store is not None
        flavor = KINESIS if isinstance(source, KinesisSource) else DYNAMODB_STREAMS
        client = aws_client(flavor.client_service, source.region)
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
        handling = self._failure_handling(mapping, invoker, None)
        settings = StreamShardSettings(
            flavor=flavor,
            stream_arn=stream_arn,
            namespace=lease_namespace(mapping.uuid, stream_arn),
            owner=holder_id(),
            start=stream_start(mapping),
            limits=BatchLimits(mapping.batch_size, mapping.batching_window_seconds),
            lanes=mapping.ParallelizationFactor,
            window_seconds=mapping.TumblingWindowInSeconds,
            polling_interval_seconds=mapping.polling_interval_seconds,
            record_filter=handling.record_filter,
            report_batch_item_failures=handling.report_batch_item_failures,
            policy=failure_policy(mapping, bisect=mapping.TumblingWindowInSeconds == 0),
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
            flavor=flavor,
            settings=settings,
            client=client,
            lister=flavor.make_lister(client, stream_arn),
            leases=self._store.leases,
            timing=LeaseTiming(self._config.LeaseDurationSeconds, self._config.ShardDiscoveryIntervalSeconds),
            invoker=invoker,
            metrics=self._metrics,
            failure_handling=handling,
            status=self._store.status,
        )

    async def _publish_status(self) -> None:
        """Reports the owned shards to the store for `esm status`, every STATUS_INTERVAL_SECONDS."""
        assert self._store is not None
        owner = holder_id()
        while True:
            for runner in self.runners:
                try:
                    await self._store.status.publish(
                        runner.mapping_id, runner.status_reports(owner), STATUS_TTL_SECONDS, time.time()
                    )
                except StoreError as err:
                    log.warning("cannot publish shard status: %s", err)
            await asyncio.sleep(STATUS_INTERVAL_SECONDS)

    async def shutdown(self, grace_seconds: float) -> None:
        if self._status_task is not None:
            self._status_task.cancel()
        deadline = time.monotonic() + grace_seconds
        await asyncio.gather(*(runner.shutdown(deadline) for runner in self.runners))
        for limiter in self._limiters:
            await limiter.close()
        for pool in self._pools:
            await pool.close()
        if self._store is not None:
            await self._store.close()


async def run_poller(config: EsmConfig, metrics: Metrics, stop: asyncio.Event, shared: bool) -> None:
    poller = Poller(config, metrics, shared)
    await poller.start()
    await stop.wait()
    log.info("stopping: finishing batches in flight (grace %.0fs)", config.ShutdownGracePeriodSeconds)
    await poller.shutdown(config.ShutdownGracePeriodSeconds)
