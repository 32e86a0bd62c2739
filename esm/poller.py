"""One poller process: the function invokers, the running mappings (the config file's and the
store's, kept live by esm.mappings.live), status reports, two-phase shutdown.

This is the composition root of a poller process: it builds the collaborators from the config
and hands them to each other (the runners through esm.mappings.factory); nothing below it reads
the config.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from esm.config import EsmConfig
from esm.dispatch.endpoints import EndpointPool
from esm.dispatch.invoker import FunctionIdentity, FunctionInvoker
from esm.dispatch.limiter import ConcurrencyLimiter, make_limiter
from esm.dispatch.tls import channel_credentials
from esm.mappings.factory import MappingRunner, RunnerFactory, holder_id
from esm.mappings.live import LiveMappings
from esm.metrics import Metrics
from esm.sources.outage_notices import OutageLog
from esm.status.report_publishing import PublishedReports
from esm.stores import Store, StoreError, open_store

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

# Shard reports that changed are written this often; unchanged ones are rewritten once this old
# (esm.status.report_publishing), and expire unless rewritten (owner gone).
STATUS_INTERVAL_SECONDS = 1.0
STATUS_REFRESH_SECONDS = 2.5
STATUS_TTL_SECONDS = 5.0


class Poller:
    def __init__(self, config: EsmConfig, metrics: Metrics, shared: bool) -> None:
        """`shared`: other poller processes (or hosts) invoke the same functions."""
        self._config = config
        self._metrics = metrics
        self._shared = shared
        self._store: Store | None = None
        self._limiters: list[ConcurrencyLimiter] = []
        self._pools: list[EndpointPool] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.mappings: LiveMappings | None = None
        self._tracer_provider: TracerProvider | None = None

    @property
    def runners(self) -> list[MappingRunner]:
        return list(self.mappings.runners.values()) if self.mappings is not None else []

    async def start(self) -> None:
        self._store = open_store(self._config.Store)
        invokers: dict[str, FunctionInvoker] = {}
        for index, function in enumerate(self._config.Functions):
            limiter = make_limiter(
                function.ReservedConcurrentExecutions,
                self._store,
                function.FunctionName,
                holder_id(),
                self._shared,
                self._config.PermitLeaseSeconds,
            )
            pool = EndpointPool(
                function.Endpoints, time.monotonic, channel_credentials(function, f"Functions[{index}].Tls")
            )
            self._limiters.append(limiter)
            self._pools.append(pool)
            identity = FunctionIdentity(function.FunctionName, float(function.Timeout), function.MemorySize)
            invokers[function.FunctionName] = FunctionInvoker(identity, pool, limiter, self._metrics)
        factory = RunnerFactory(self._config, self._store, self._metrics, invokers, self._start_tracing())
        self.mappings = LiveMappings(
            factory,
            self._store.mappings,
            self._config.EventSourceMappings,
            self._config.ShutdownGracePeriodSeconds,
            frozenset(invokers),
        )
        await self.mappings.start_file_mappings()
        self._tasks = [
            asyncio.create_task(self.mappings.watch(), name="mappings"),
            asyncio.create_task(self._publish_status(), name="status"),
        ]

    def _start_tracing(self) -> Tracer | None:
        """The tracer, only with `Tracing` (the SDK is not even imported without it)."""
        config = self._config.Tracing
        if config is None:
            return None
        from esm.tracing.provider import TRACER_NAME, start_provider, traces_url

        self._tracer_provider = start_provider(config)
        log.info(
            "tracing: %s of batches to %s as %s",
            f"{config.SampleRatio:.0%}",
            traces_url(config.Endpoint),
            config.ServiceName,
        )
        return self._tracer_provider.get_tracer(TRACER_NAME)

    async def _publish_status(self) -> None:
        """Reports the owned shards to the store for `esm status`, every STATUS_INTERVAL_SECONDS."""
        assert self._store is not None
        owner = holder_id()
        outage = OutageLog(log, "publish shard status to the store")
        published = PublishedReports(STATUS_REFRESH_SECONDS)
        while True:
            failure = await publish_status_round(self._store, self.runners, owner, published, time.time())
            if failure is not None:
                outage.failed(failure)
            else:
                outage.succeeded()
            await asyncio.sleep(STATUS_INTERVAL_SECONDS)

    async def shutdown(self, grace_seconds: float) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        deadline = time.monotonic() + grace_seconds
        if self.mappings is not None:
            await self.mappings.shutdown(deadline)
        for limiter in self._limiters:
            await limiter.close()
        for pool in self._pools:
            await pool.close()
        if self._store is not None:
            await self._store.close()
        if self._tracer_provider is not None:
            from esm.tracing.provider import stop_provider

            await asyncio.to_thread(stop_provider, self._tracer_provider)


async def publish_status_round(
    store: Store, runners: list[MappingRunner], owner: str, published: PublishedReports, now: float
) -> StoreError | None:
    """Writes the reports of `runners` that are due (esm.status.report_publishing); the last
    store error, if any (the failed mappings' reports stay due)."""
    failure: StoreError | None = None
    for runner in runners:
        due = published.due(runner.mapping_id, runner.status_reports(owner), now)
        if not due:
            continue
        try:
            await store.status.publish(runner.mapping_id, due, STATUS_TTL_SECONDS, now)
        except StoreError as err:
            failure = err
        else:
            published.written(runner.mapping_id, due, now)
    published.forget_mappings_except({runner.mapping_id for runner in runners})
    return failure


async def run_poller(config: EsmConfig, metrics: Metrics, stop: asyncio.Event, shared: bool) -> None:
    poller = Poller(config, metrics, shared)
    await poller.start()
    await stop.wait()
    log.info("stopping: finishing batches in flight (grace %.0fs)", config.ShutdownGracePeriodSeconds)
    await poller.shutdown(config.ShutdownGracePeriodSeconds)
