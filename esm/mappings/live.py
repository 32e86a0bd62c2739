"""Mappings as live objects: every poller keeps its running mappings equal to what the config file
and the store's registry (the control API, esm.control) say, within a fraction of a second.

    desired (file + registry) --plan()--> start | stop | reconfigure | restart --> running runners
                                   then settle the registry's states (Creating -> Enabled, ...)

`plan` is pure. A change of batch limits, retry and failure settings, filters, destination or
function is applied in place (the next batch uses it, a batch in flight finishes as it started);
a change of anything else restarts the mapping's runner (two-phase: batches in flight finish and
are checkpointed, partitions and leases are given up, then it starts again). Disabling or
deleting stops the runner the same way, so nothing is lost or checkpointed past a record that
was not processed.

The registry is read only when its generation moved (one small read a quarter second). Several
pollers and daemons share a store: each applies the change, and the first to finish moves the
state on (every registry write is compare-and-set, so the others' writes fail harmlessly).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from esm.config import ConfigError, EventSourceMappingConfig, parse_mapping
from esm.mappings.factory import MappingRunner, RunnerFactory
from esm.sources.outage_notices import OutageLog
from esm.stores import StoreError
from esm.stores.mappings import MappingRegistry, StoredMapping

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.25
# A mapping that failed to start (its stream cannot be resolved, say) is tried again this often.
RETRY_START_SECONDS = 5.0
# Settings a running mapping takes without a restart.
HOT_FIELDS = frozenset(
    {
        "FunctionName",
        "FunctionArn",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "MaximumRetryBackoffInSeconds",
        "BisectBatchOnFunctionError",
        "FunctionResponseTypes",
        "DestinationConfig",
        "FilterCriteria",
        "Enabled",
        # AWS-only settings, accepted and ignored: changing them changes nothing.
        "ProvisionedPollerConfig",
        "ScalingConfig",
        "KMSKeyArn",
        "SourceAccessConfigurations",
        "Tags",
        "AmazonManagedKafkaEventSourceConfig",
        "DocumentDBEventSourceConfig",
        "Queues",
    }
)
_TRANSITIONS = {"Creating", "Enabling", "Updating", "Disabling"}


class ChangeKind(enum.Enum):
    START = "start"
    STOP = "stop"
    RECONFIGURE = "reconfigure"
    RESTART = "restart"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    uuid: str
    mapping: EventSourceMappingConfig | None = None


def plan(
    running: Mapping[str, EventSourceMappingConfig], desired: Mapping[str, EventSourceMappingConfig]
) -> list[Change]:
    """The changes that make the running mappings the desired ones (enabled ones run)."""
    changes = []
    for uuid, current in sorted(running.items()):
        wanted = desired.get(uuid)
        if wanted is None or not wanted.Enabled:
            changes.append(Change(ChangeKind.STOP, uuid))
        elif wanted != current:
            kind = ChangeKind.RECONFIGURE if _only_hot_fields_differ(current, wanted) else ChangeKind.RESTART
            changes.append(Change(kind, uuid, wanted))
    for uuid, wanted in sorted(desired.items()):
        if uuid not in running and wanted.Enabled:
            changes.append(Change(ChangeKind.START, uuid, wanted))
    return changes


def _only_hot_fields_differ(current: EventSourceMappingConfig, wanted: EventSourceMappingConfig) -> bool:
    return current.model_dump(exclude=set(HOT_FIELDS)) == wanted.model_dump(exclude=set(HOT_FIELDS))


def settled_state(stored: StoredMapping, running: bool) -> str | None:
    """The state to write once this poller applied `stored` (None: nothing to write): a
    transition ends in Enabled or Disabled."""
    if stored.state not in _TRANSITIONS:
        return None
    return "Enabled" if running else "Disabled"


class LiveMappings:
    def __init__(
        self,
        factory: RunnerFactory,
        registry: MappingRegistry,
        file_mappings: Sequence[EventSourceMappingConfig],
        grace_seconds: float,
        known_functions: frozenset[str],
        interval: float = WATCH_INTERVAL_SECONDS,
    ) -> None:
        self._factory = factory
        self._registry = registry
        self._file = {mapping.uuid: mapping for mapping in file_mappings}
        self._grace = grace_seconds
        self._functions = known_functions
        self._interval = interval
        self.runners: dict[str, MappingRunner] = {}
        self._running: dict[str, EventSourceMappingConfig] = {}
        self._generation: int | None = None
        self._retry_at: dict[str, float] = {}
        self._unusable: set[tuple[str, int]] = set()
        # Read every `interval`: said once, then once a minute while the store cannot be read.
        self._store_outage = OutageLog(log, "read the mappings in the store")

    async def start_file_mappings(self) -> None:
        """Starts the config file's enabled mappings (before the registry is read)."""
        for mapping in self._file.values():
            if not mapping.Enabled:
                log.info("mapping %s is disabled; not polling", mapping.uuid)
        await self._apply(plan(self._running, self._file))

    async def watch(self) -> None:
        """Keeps the running mappings in step with the registry until cancelled."""
        while True:
            try:
                await self.sync()
            except StoreError as err:
                self._store_outage.failed(err)
            else:
                self._store_outage.succeeded()
            await asyncio.sleep(self._interval)

    async def sync(self) -> None:
        """One round: if the registry changed (or a failed start is due again), apply it."""
        generation = await self._registry.generation()
        retry_due = any(when <= time.monotonic() for when in self._retry_at.values())
        if generation == self._generation and not retry_due:
            return
        stored = await self._registry.list()
        await self._apply(plan(self._running, self._desired(stored)))
        await self._settle(stored)
        self._generation = generation

    def _desired(self, stored: Sequence[StoredMapping]) -> dict[str, EventSourceMappingConfig]:
        desired = dict(self._file)
        for entry in stored:
            if entry.state == "Deleting":
                continue
            mapping = self._usable(entry)
            if mapping is not None:
                desired[entry.uuid] = mapping
        return desired

    def _usable(self, entry: StoredMapping) -> EventSourceMappingConfig | None:
        """The stored mapping, if this poller can run it (it knows the function); said once."""
        problem = None
        mapping = None
        try:
            mapping = parse_mapping(entry.document)
        except ConfigError as err:
            problem = f"its settings are not valid here: {'; '.join(err.problems)}"
        if mapping is not None and mapping.function_name not in self._functions:
            problem = f"function {mapping.function_name!r} is not in this daemon's Functions"
        if problem is None:
            return mapping
        if (entry.uuid, entry.revision) not in self._unusable:
            self._unusable.add((entry.uuid, entry.revision))
            log.error("mapping %s from the store is not run by this daemon: %s", entry.uuid, problem)
        return None

    async def _apply(self, changes: Sequence[Change]) -> None:
        await asyncio.gather(*(self._carry_out(change) for change in changes))

    async def _carry_out(self, change: Change) -> None:
        uuid = change.uuid
        if change.kind is ChangeKind.START and time.monotonic() < self._retry_at.get(uuid, 0.0):
            return
        try:
            if change.kind in (ChangeKind.STOP, ChangeKind.RESTART):
                await self._stop(uuid)
            if change.kind in (ChangeKind.START, ChangeKind.RESTART):
                assert change.mapping is not None
                await self._start(change.mapping)
            if change.kind is ChangeKind.RECONFIGURE:
                assert change.mapping is not None
                settings = self._factory.settings(change.mapping)
                self.runners[uuid].reconfigure(
                    settings.limits, settings.policy, settings.failure_handling, settings.invoker
                )
                self._running[uuid] = change.mapping
                log.info("mapping %s: new settings apply from the next batch", uuid)
        except Exception:
            self._retry_at[uuid] = time.monotonic() + RETRY_START_SECONDS
            log.exception(
                "mapping %s: cannot %s it; trying again in %.0fs",
                uuid,
                change.kind.value,
                RETRY_START_SECONDS,
            )

    async def _start(self, mapping: EventSourceMappingConfig) -> None:
        runner = await self._factory.build(mapping)
        runner.start()
        self.runners[mapping.uuid] = runner
        self._running[mapping.uuid] = mapping
        self._retry_at.pop(mapping.uuid, None)

    async def _stop(self, uuid: str) -> None:
        runner = self.runners.pop(uuid, None)
        self._running.pop(uuid, None)
        if runner is not None:
            await runner.shutdown(time.monotonic() + self._grace)
            log.info("mapping %s: stopped", uuid)

    async def _settle(self, stored: Sequence[StoredMapping]) -> None:
        """Moves the registry's states on for what this poller has applied."""
        for entry in stored:
            try:
                if entry.state == "Deleting":
                    if entry.uuid not in self.runners and await self._registry.delete(
                        entry.uuid, entry.revision
                    ):
                        log.info("mapping %s: deleted", entry.uuid)
                    continue
                state = settled_state(entry, entry.uuid in self.runners)
                wanted = self._desired([entry]).get(entry.uuid)
                if state is None or wanted is None or (wanted.Enabled != (entry.uuid in self.runners)):
                    continue  # not applied here (yet)
                await self._registry.replace(
                    StoredMapping(
                        entry.uuid, entry.document, state, entry.state_reason, time.time(), entry.revision
                    )
                )
            except StoreError as err:
                log.warning("mapping %s: cannot record its state: %s", entry.uuid, err)

    async def shutdown(self, deadline: float) -> None:
        runners, self.runners = self.runners, {}
        self._running.clear()
        await asyncio.gather(*(runner.shutdown(deadline) for runner in runners.values()))
