"""The kafka-python client behind `GroupReader` (the default Kafka client: pure Python).

Its consumer yields event entries, not ConsumerRecords: fetched v2 batches are decoded straight
into them (`esm.sources.kafka_python_entries`), which halves the reader's CPU per record.

Behaviours of kafka-python 3.0.12 handled here, each proven by tests/sources:
- one record whose header name is not UTF-8 fails every fetch of its partition; header names
  are read as Java's client reads them instead (`esm.sources.kafka_python_headers`);
- a partition revoked and assigned back to the same member keeps its old fetch position, so
  every new epoch seeks to the committed offset (see `GroupReader._init_new_partitions`);
- a resumed partition can stay stuck: data fetched while it was paused is parked and only
  restored when an internal slot is None, which it never is again after the first fetch. On
  resume the parked data is dropped and the partition seeks to the first record not delivered;
- `poll` returns nothing while the member rejoins the group, even under cooperative rebalancing
  where the partitions it owns stay its own (the broker may hold a JoinGroup for seconds). Java's
  consumer fetches on meanwhile; so does this adapter (`esm.sources.kafka_python_rejoin`);
- `poll` sleeps retry.backoff.ms (100 ms) whenever it finds no fetch to send and none in flight,
  which happens now and then between one fetch's answer and the next request (the IO thread has
  not yet marked the broker free), and nothing wakes it: every partition stalls for 100 ms, a
  latency spike every few seconds at `fetch.max.wait.ms` 10. Unless the mapping sets
  retry.backoff.ms, it is no longer than fetch.max.wait.ms (`retry_backoff_ms`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.coordinator.base import MemberState
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from esm.ownership.kafka_assignment import TopicPartitionId
from esm.sources import kafka_python_entries, kafka_python_headers
from esm.sources.kafka_group import ClientError, GroupReader, PartitionEvents, ReaderSettings
from esm.sources.kafka_python_rejoin import (
    FETCH_WAIT_MS,
    RoundWaiter,
    fetch_during_round,
    rejoining_cooperatively,
)

__all__ = ["KafkaGroupReader", "PartitionEvents", "ReaderSettings"]

# How long creating a consumer may wait for the brokers before it fails (and is tried again).
BOOTSTRAP_TIMEOUT_MS = 3000


def retry_backoff_ms(consumer_kwargs: dict[str, Any]) -> int:
    """The consumer's retry.backoff.ms: as the mapping sets it, else kafka-python's default
    (100 ms) but no longer than fetch.max.wait.ms (poll's idle sleep, see above, must not outlast
    the wait the mapping chose for records)."""
    if "retry_backoff_ms" in consumer_kwargs:
        return int(consumer_kwargs["retry_backoff_ms"])
    defaults = KafkaConsumer.DEFAULT_CONFIG
    fetch_wait = int(consumer_kwargs.get("fetch_max_wait_ms", defaults["fetch_max_wait_ms"]))
    return max(1, min(int(defaults["retry_backoff_ms"]), fetch_wait))


def _tp(tp: TopicPartitionId) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


def _id(tp: TopicPartition) -> TopicPartitionId:
    return TopicPartitionId(tp.topic, tp.partition)


def _by_partition(batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartitionId, list[Any]]:
    """A poll's or a fetch's result keyed as esm keys partitions (the consumer yields event
    entries already: `kafka_python_entries.use_entries`)."""
    return {_id(tp): records for tp, records in batch.items()}


class KafkaGroupReader(GroupReader[Any]):
    def __init__(
        self,
        settings: ReaderSettings,
        events: PartitionEvents,
        loop: asyncio.AbstractEventLoop,
        record_size: Callable[[Any], int],
        consumer_factory: Callable[..., Any] = KafkaConsumer,
    ) -> None:
        super().__init__(settings, events, loop, record_size)
        self._consumer_factory = consumer_factory
        # The thread awaiting the current cooperative rebalance round, if one goes on.
        self._round: RoundWaiter | None = None
        self._said_rebalancing = False
        kafka_python_headers.install()

    def _connect(self) -> Any:
        # kafka-python's constructor waits for the brokers (30 s by default): a shutdown waits for it.
        kwargs = {"bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS, **self._settings.consumer_kwargs}
        kwargs["retry_backoff_ms"] = retry_backoff_ms(kwargs)
        # A round of the previous consumer (closed after a failure) is over for this one.
        self._round, self._said_rebalancing = None, False
        try:
            consumer = self._consumer_factory(**_with_assignor_classes(kwargs))
            kafka_python_entries.use_entries(consumer)
            consumer.subscribe([self._settings.topic], listener=_Listener(self, consumer))
        except KafkaError as err:
            raise ClientError(str(err)) from err
        return consumer

    def _poll(self, client: Any, timeout_ms: int) -> dict[TopicPartitionId, list[Any]]:
        max_records = self._settings.max_poll_records
        if self._round is not None and self._round.done:
            error, self._round = self._round.error, None
            if error is not None:
                raise error
        if self._round is None and rejoining_cooperatively(client):
            if not self._said_rebalancing:  # once per rebalance, not per round of it
                self._rebalance_started(sorted(_id(tp) for tp in client.assignment()))
                self._said_rebalancing = True
            self._round = RoundWaiter(client, f"kafka-rejoin-{self._settings.topic}")
        if self._round is not None:
            records, idle = fetch_during_round(client, max_records, timeout_ms)
            if idle:  # nothing fetchable or in flight: wait instead of spinning
                self._closing.wait(min(timeout_ms, FETCH_WAIT_MS) / 1000)
            return _by_partition(records)
        self._said_rebalancing = False
        return _by_partition(client.poll(timeout_ms=timeout_ms, max_records=max_records))

    def _rebalancing(self, client: Any) -> bool:
        return self._round is not None

    def _commit(self, client: Any, offsets: dict[TopicPartitionId, int]) -> None:
        try:
            client.commit(
                offsets={_tp(tp): OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
                timeout_ms=int(self._commit_timeout() * 1000),
            )
        except KafkaError as err:
            raise ClientError(str(err)) from err

    def _position_at_start(self, client: Any, tp: TopicPartitionId) -> int | None:
        partition = _tp(tp)
        # Bounded: brokers gone right after an assignment would hold the thread forever.
        committed: int | None = client.committed(partition, timeout_ms=int(self._commit_timeout() * 1000))
        start = self._settings.start
        if committed is not None:
            client.seek(partition, committed)
        elif start == "latest":
            client.seek_to_end(partition)
        elif isinstance(start, int):
            found = client.offsets_for_times({partition: start}).get(partition)
            if found is not None:
                client.seek(partition, found.offset)
            else:
                client.seek_to_end(partition)
        else:
            client.seek_to_beginning(partition)
        return committed

    def _pause(self, client: Any, tps: Sequence[TopicPartitionId]) -> None:
        client.pause(*(_tp(tp) for tp in tps))

    def _resume(self, client: Any, tp: TopicPartitionId, next_offset: int | None) -> None:
        partition = _tp(tp)
        client.resume(partition)
        fetcher = getattr(client, "_fetcher", None)
        for parked in ("_paused_partition_records", "_paused_completed_fetches"):
            getattr(fetcher, parked, {}).pop(partition, None)
        if next_offset is not None:
            client.seek(partition, next_offset)

    def _highwater(self, client: Any, tp: TopicPartitionId) -> int | None:
        mark: int | None = client.highwater(_tp(tp))
        return mark

    def _close_client(self, client: Any) -> None:
        client.close(autocommit=False, timeout_ms=int(self._settings.close_timeout_seconds * 1000))

    def _waiting_for_assignment(self, client: Any) -> bool | None:
        """Not a settled member of the group (joining or rebalancing) while the topic has partitions."""
        coordinator = getattr(client, "_coordinator", None)
        cluster = getattr(client, "_cluster", None)
        if coordinator is None or cluster is None:
            return None
        partitions = cluster.partitions_for_topic(self._settings.topic)
        return bool(partitions) and coordinator.state != MemberState.STABLE

    def _reachable(self, client: Any) -> bool | None:
        """Connected to some broker (the group coordinator's connection stays open while the
        member is in the group). kafka-python offers no public call for it."""
        connections = getattr(getattr(client, "_manager", None), "_conns", None)
        if connections is None:
            return None
        return any(getattr(conn, "connected", False) for conn in list(connections.values()))

    def _group_contact(self, client: Any) -> tuple[float, float] | None:
        # kafka-python's own reckoning of the session (Heartbeat.session_timeout_expired): the
        # last successful heartbeat, or the last (re)join, on the monotonic clock. Heartbeats
        # pause while the member rejoins, which may outlast a session with the coordinator in
        # touch (it holds the JoinGroup): a rebalance under way with a known coordinator is
        # contact; a stable member whose heartbeats go unanswered is not.
        coordinator: Any = getattr(client, "_coordinator", None)
        heartbeat = getattr(coordinator, "heartbeat", None)
        if coordinator is None or heartbeat is None:
            return None
        session = heartbeat.config["session_timeout_ms"] / 1000
        if coordinator.coordinator_id is not None and coordinator.state is not MemberState.STABLE:
            return time.monotonic(), session
        return float(max(heartbeat.last_receive, heartbeat.last_reset)), session

    def _still_assigned(self, client: Any) -> set[TopicPartitionId]:
        return {_id(tp) for tp in client.assignment()}


_ASSIGNORS = {
    assignor.name: assignor
    for assignor in (
        RangePartitionAssignor,
        RoundRobinPartitionAssignor,
        StickyPartitionAssignor,
        CooperativeStickyAssignor,
    )
}


def _with_assignor_classes(kwargs: dict[str, Any]) -> dict[str, Any]:
    """partition.assignment.strategy arrives as names (esm.config.kafka_properties); kafka-python
    takes the assignor classes."""
    names = kwargs.get("partition_assignment_strategy")
    if names is None:
        return kwargs
    return {**kwargs, "partition_assignment_strategy": tuple(_ASSIGNORS[name] for name in names)}


class _Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's IO event loop, which also drives heartbeats: it must not block, and
    the consumer's blocking calls are refused there. So the commit of revoked partitions awaits
    the coordinator's own coroutine (kafka-python 3.0 has no public async commit)."""

    def __init__(self, reader: KafkaGroupReader, consumer: Any) -> None:
        self._reader = reader
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        offsets = self._reader._revoke_for_commit([_id(tp) for tp in revoked])
        error: Exception | None = None
        if offsets:
            try:
                await self._consumer._coordinator._commit_offsets_sync_async(
                    {_tp(tp): OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
                    timeout_ms=self._reader._settings.revoke_commit_timeout_ms,
                )
            except Exception as err:  # any failure: the next owner re-reads from the last commit
                error = err
        self._reader._revoke_committed(offsets, error)

    async def on_partitions_lost(self, lost: Sequence[TopicPartition]) -> None:
        # Evicted: the partitions may have a new owner already; a commit would be refused.
        self._reader._on_revoked([_id(tp) for tp in lost])

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._reader._on_assigned([_id(tp) for tp in assigned])
