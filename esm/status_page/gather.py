"""What the status page shows, gathered as `esm status` gathers it, within a time budget.

The page must answer fast even when the store or a broker does not: every step is bounded, and
what did not answer in time is named in the snapshot's "unreachable" list instead of holding
the page. A store that is slow to open keeps opening in the background and is picked up by a
later refresh (never opened twice, never leaked); without a store, Kafka mappings still show
their partitions and offsets (without owners' reports).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from esm.config import EsmConfig, EventSourceMappingConfig, KafkaSource
from esm.config.sources import DynamoDBStreamsSource, KinesisSource
from esm.status.command import collect_mapping, mapping_header, mappings_of
from esm.stores import Store, StoreError, open_store
from esm.stores.url import RedisLocation, parse_store_url

# Closing a store that stopped answering must not hold the next refresh either.
STORE_CLOSE_SECONDS = 1.0
# The part of the budget that waiting for the store to open may take.
STORE_SHARE = 0.5
# Kafka's client needs some time even when the budget is nearly spent.
MIN_KAFKA_TIMEOUT_SECONDS = 0.5


def describe_source(mapping: EventSourceMappingConfig) -> str:
    """The mapping's source in one line: a Kafka topic with its brokers and group, or an ARN."""
    source = mapping.source
    if isinstance(source, KafkaSource):
        servers = ",".join(source.bootstrap_servers)
        return f"Kafka topic {source.topic} on {servers}, group {source.consumer_group_id}"
    if isinstance(source, KinesisSource | DynamoDBStreamsSource):
        return source.arn
    return str(mapping.EventSourceArn)


def store_name(url: str) -> str:
    """The store URL as the page may show it: a Redis password is left out."""
    location = parse_store_url(url)
    return location.display_url if isinstance(location, RedisLocation) else url


class StatusGatherer:
    """Gathers snapshots on one event loop (the store's connections belong to it); keeps the
    store open between refreshes and reopens it after a failure."""

    def __init__(
        self,
        config: EsmConfig,
        opener: Callable[[str], Store] = open_store,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._opener = opener
        self._clock = clock
        self._store: Store | None = None
        self._opening: asyncio.Task[Store] | None = None

    async def gather(self, budget_seconds: float) -> dict[str, Any]:
        """{"mappings": [...], "unreachable": [...], "gather_seconds": ...}, within about
        `budget_seconds` whatever does not answer."""
        started = self._clock()
        deadline = started + budget_seconds
        unreachable: list[str] = []
        # The store may take half the budget: the sources get the rest even when it never answers.
        store = await self._open_store(started + budget_seconds * STORE_SHARE, unreachable)
        mappings, listing_failed = await self._mappings(
            store, started + budget_seconds * STORE_SHARE, unreachable
        )
        results = await asyncio.gather(
            *(self._mapping(store, mapping, state, deadline) for mapping, state in mappings)
        )
        for _, problem, _ in results:
            if problem is not None and problem not in unreachable:
                unreachable.append(problem)
        if listing_failed or any(store_failed for _, _, store_failed in results):
            await self._drop_store()  # reopened by the next refresh
        return {
            "mappings": [entry for entry, _, _ in results],
            "unreachable": unreachable,
            "gather_seconds": round(self._clock() - started, 3),
        }

    async def close(self) -> None:
        """Closes the store. A store still opening is left to its thread: the process is ending."""
        await self._drop_store()

    async def _open_store(self, deadline: float, unreachable: list[str]) -> Store | None:
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.create_task(asyncio.to_thread(self._opener, self._config.Store))
        done, _ = await asyncio.wait({self._opening}, timeout=max(0.0, deadline - self._clock()))
        if not done:
            unreachable.append(f"store {store_name(self._config.Store)}: no answer yet (still connecting)")
            return None
        opening, self._opening = self._opening, None
        try:
            self._store = opening.result()
        except StoreError as err:
            unreachable.append(str(err))
            return None
        return self._store

    async def _mappings(
        self, store: Store | None, deadline: float, unreachable: list[str]
    ) -> tuple[list[tuple[EventSourceMappingConfig, str]], bool]:
        """The mappings to show with their states, and whether the store failed listing those
        created through the control API (then only the config file's are shown)."""
        if store is not None:
            try:
                # asyncio.timeout, not wait_for: see esm.shard.waits.
                async with asyncio.timeout(max(0.0, deadline - self._clock())):
                    listed = await mappings_of(self._config, store)
                return listed, False
            except (TimeoutError, StoreError) as err:
                unreachable.append(
                    f"store {store_name(self._config.Store)}: cannot list the mappings created through "
                    f"the control API: {err or 'no answer in time'}"
                )
        return await mappings_of(self._config, None), store is not None

    async def _mapping(
        self, store: Store | None, mapping: EventSourceMappingConfig, state: str, deadline: float
    ) -> tuple[dict[str, Any], str | None, bool]:
        """The mapping's entry, what could not be read for it, and whether the store failed."""
        remaining = max(0.0, deadline - self._clock())
        problem: str | None = None
        store_failed = False
        try:
            async with asyncio.timeout(remaining):
                entry = await collect_mapping(
                    store, mapping, state, kafka_timeout_s=max(remaining, MIN_KAFKA_TIMEOUT_SECONDS)
                )
        except TimeoutError:
            entry = mapping_header(mapping, state)
            entry["error"] = f"no answer within {remaining:.1f}s from its source or the store"
        except StoreError as err:
            entry = mapping_header(mapping, state)
            entry["error"] = problem = str(err)
            store_failed = True
        if "error" in entry and problem is None:
            problem = f"mapping {mapping.uuid} ({describe_source(mapping)}): {entry['error']}"
        entry["source"] = describe_source(mapping)
        return entry, problem, store_failed

    async def _drop_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STORE_CLOSE_SECONDS):
                    await store.close()
