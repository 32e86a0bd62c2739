"""A mapping's running shards, whatever the source: the task table, restart backoff after a crash,
two-phase shutdown, status reports, the owned-shards gauge, and the failure sink each shard
writes to.

Sources differ only in what starts and ends a shard (a Kafka rebalance, a lease taken or lost)
and in what a crash is answered with (read the partition again in a new epoch; give the lease
up): the runner of each source (esm.mappings) passes those in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Generic, Protocol, TypeVar

from esm.shard.metrics import ShardMetrics
from esm.shard.sink import FailureSink

log = logging.getLogger(__name__)

# A shard that keeps crashing (a bug, not a function error) is restarted after 1 s, 2 s, 4 s, ...
RESTART_CAP_SECONDS = 60.0
# How long shutdown waits for a cancelled shard to end (a bounded wait: shutdown never hangs).
CANCEL_WAIT_SECONDS = 5.0

K = TypeVar("K")


class Supervised(Protocol):
    def lease_lost(self) -> None: ...
    def request_shutdown(self) -> None: ...
    def status_report(self, owner: str) -> dict[str, Any]: ...


S = TypeVar("S", bound=Supervised)


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class _Closable(Protocol):
    async def close(self) -> None: ...


class ShardSupervisor(Generic[K, S]):
    def __init__(
        self,
        mapping_id: str,
        metrics: ShardMetrics,
        owned: _Gauge,
        make_sink: Callable[[str], FailureSink[Any] | None],
        destination: _Closable | None = None,
    ) -> None:
        self.mapping_id = mapping_id
        self.metrics = metrics
        self._owned = owned
        self._make_sink = make_sink
        self._destination = destination
        # Destinations replaced by a reconfiguration: batches in flight may still write to them.
        self._retired: list[_Closable] = []
        self._running: dict[K, tuple[S, asyncio.Task[Any]]] = {}
        self._crashes: dict[K, int] = {}
        self.stopping = False

    def sink_for(self, shard_id: str) -> FailureSink[Any] | None:
        """The on-failure destination as the shard `shard_id` writes to it (None: no destination)."""
        return self._make_sink(shard_id)

    # -- the table -----------------------------------------------------------------------------

    def start(
        self,
        key: K,
        shard: S,
        work: Coroutine[Any, Any, Any],
        *,
        ended: Callable[[S, asyncio.Task[Any]], None] | None = None,
        crashed: Callable[[S, float], None],
    ) -> None:
        """Runs `work` for `shard`, replacing (as lost) a shard running under `key`. When it ends
        normally `ended` hears of it; when it raises (a bug), `crashed` is told to restart it
        after a delay that grows while it keeps failing."""
        self.drop(key)
        task = asyncio.create_task(work, name=f"shard-{key}")
        self._running[key] = (shard, task)
        self._owned.set(len(self._running))
        task.add_done_callback(lambda done: self._finished(key, shard, done, ended, crashed))

    def get(self, key: K) -> S | None:
        entry = self._running.get(key)
        return entry[0] if entry is not None else None

    def drop(self, key: K) -> S | None:
        """The shard under `key` is lost (revoked, lease gone): it stops at once and leaves the table."""
        entry = self._running.pop(key, None)
        if entry is None:
            return None
        self._owned.set(len(self._running))
        entry[0].lease_lost()
        return entry[0]

    def __iter__(self) -> Iterator[tuple[K, S]]:
        return ((key, shard) for key, (shard, _) in list(self._running.items()))

    def __len__(self) -> int:
        return len(self._running)

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        """The running shards' tasks."""
        return [task for _, task in self._running.values()]

    def _finished(
        self,
        key: K,
        shard: S,
        task: asyncio.Task[Any],
        ended: Callable[[S, asyncio.Task[Any]], None] | None,
        crashed: Callable[[S, float], None],
    ) -> None:
        entry = self._running.get(key)
        if entry is not None and entry[0] is shard:
            del self._running[key]
            self._owned.set(len(self._running))
        if self.stopping or task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._crashes.pop(key, None)
            if ended is not None:
                ended(shard, task)
            return
        crashes = self._crashes.get(key, 0) + 1
        self._crashes[key] = crashes
        delay = min(RESTART_CAP_SECONDS, 2.0 ** (crashes - 1))
        log.error(
            "mapping %s: shard %s failed; it is read again from its checkpoint in %.0fs",
            self.mapping_id,
            key,
            delay,
            exc_info=error,
        )
        crashed(shard, delay)

    # -- shutdown and status -------------------------------------------------------------------

    async def shutdown(self, deadline: float) -> list[S]:
        """Two phases: every shard stops taking batches and its batches in flight finish until
        `deadline` (monotonic); what is still running then is cancelled (its batches are
        delivered again by the next owner). Returns the shards that were running."""
        self.stopping = True
        entries = list(self._running.values())
        for shard, _ in entries:
            shard.request_shutdown()
        tasks = [task for _, task in entries]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
            for unfinished in pending:
                unfinished.cancel()
            if pending:
                log.warning(
                    "mapping %s: %d shards still had batches in flight after the grace period; "
                    "they will be re-delivered",
                    self.mapping_id,
                    len(pending),
                )
                await asyncio.wait(pending, timeout=CANCEL_WAIT_SECONDS)
        self._running.clear()
        self._owned.set(0)
        return [shard for shard, _ in entries]

    def replace_destination(self, destination: _Closable | None) -> None:
        """The mapping writes to `destination` from now on; the one before is closed at shutdown."""
        if destination is not self._destination and self._destination is not None:
            self._retired.append(self._destination)
        self._destination = destination

    async def close_destination(self) -> None:
        for destination in [*self._retired, self._destination]:
            if destination is not None:
                await destination.close()

    def status_reports(self, owner: str, key_text: Callable[[K], str] = str) -> dict[str, dict[str, Any]]:
        """What `esm status` shows of each shard this process runs."""
        return {key_text(key): shard.status_report(owner) for key, (shard, _) in self._running.items()}
