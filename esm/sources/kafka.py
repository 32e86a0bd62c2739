"""Reads a Kafka topic as one consumer-group member, on a thread of its own.

kafka-python's consumer is not thread-safe, so one thread owns it: it polls, hands records to the
event loop, pauses partitions whose buffers are full, and commits what the event loop has marked
complete. The group's rebalance callbacks (run on kafka-python's IO thread) only flip ownership
flags and queue a notification; they never block. The consumer thread sends the notifications
before the records it delivers next, so the event loop never sees records of a partition before
it hears the partition was assigned.

Commit protocol, per loop turn: (1) collect every active assignment's completed offset that is
past its last commit, (2) commit them in one synchronous request, (3) record them as committed.
A revoked assignment yields nothing to commit, and Kafka rejects a commit from an old generation.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId

log = logging.getLogger(__name__)


class PartitionEvents(Protocol):
    """What the reader tells the event loop (each call is made on the loop)."""

    def partitions_assigned(self, assignments: list[PartitionAssignment]) -> None: ...
    def partitions_revoked(self, assignments: list[PartitionAssignment]) -> None: ...
    def records_fetched(
        self, assignment: PartitionAssignment, records: list[Any], sizes: list[int]
    ) -> None: ...
    def lag_measured(self, total_lag: int) -> None: ...
    def committed(self, count: int, failed: bool) -> None: ...


@dataclass(frozen=True)
class ReaderSettings:
    topic: str
    consumer_kwargs: dict[str, Any]
    # Where a partition starts when the group has no committed offset: "earliest", "latest",
    # or an epoch-milliseconds timestamp (AT_TIMESTAMP).
    start: str | int
    # Per-partition flow control: pause fetching above `high`, resume below `low` buffered bytes.
    buffer_high_bytes: int = 4 * 1024 * 1024
    buffer_low_bytes: int = 1 * 1024 * 1024
    poll_timeout_ms: int = 100
    max_poll_records: int = 2000
    lag_interval_seconds: float = 1.0
    # Completed offsets are committed at most this often (and always when the reader closes):
    # a synchronous commit per batch would cost more than the batch; a crash re-delivers at most
    # this much completed work.
    commit_interval_seconds: float = 0.2
    reconnect_backoff_seconds: float = 1.0


class KafkaGroupReader:
    def __init__(
        self,
        settings: ReaderSettings,
        events: PartitionEvents,
        loop: asyncio.AbstractEventLoop,
        record_size: Callable[[Any], int],
        consumer_factory: Callable[..., Any] = KafkaConsumer,
    ) -> None:
        self._settings = settings
        self._events = events
        self._loop = loop
        self._record_size = record_size
        self._consumer_factory = consumer_factory
        self._lock = threading.Lock()
        self._assignments: dict[TopicPartition, PartitionAssignment] = {}
        self._needs_init: list[TopicPartition] = []
        self._initialized: set[int] = set()  # epochs whose start position is set
        self._paused: set[TopicPartition] = set()
        self._next_offset: dict[TopicPartition, int] = {}
        self._epoch = 0
        # Assignment changes wait here for the consumer thread, which sends them ahead of any
        # records it delivers afterwards: a single sender keeps the event loop's view in order.
        self._notifications: list[
            tuple[Callable[[list[PartitionAssignment]], None], list[PartitionAssignment]]
        ] = []
        self._fetching = True
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kafka-reader-{settings.topic}", daemon=True)

    # -- control, from the event loop -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop_fetching(self) -> None:
        """Phase one of shutdown: no new records; commits go on."""
        self._fetching = False

    def close(self, timeout: float) -> None:
        """Phase two: commit what completed, leave the group, end the thread (blocking)."""
        self._closing.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("kafka reader for %s did not stop within %.1fs", self._settings.topic, timeout)

    # -- the consumer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            consumer = self._connect()
            if consumer is None:
                return
            try:
                self._poll_loop(consumer)
            except Exception:
                log.exception("kafka reader for %s failed; reconnecting", self._settings.topic)
                self._lose_all()
                self._closing.wait(self._settings.reconnect_backoff_seconds)
            finally:
                self._commit_completed(consumer)
                try:
                    consumer.close(autocommit=False)
                except Exception:
                    log.debug("closing the kafka consumer failed", exc_info=True)
                self._lose_all()

    def _connect(self) -> Any:
        backoff = self._settings.reconnect_backoff_seconds
        while not self._closing.is_set():
            try:
                consumer = self._consumer_factory(**self._settings.consumer_kwargs)
                consumer.subscribe([self._settings.topic], listener=_Listener(self))
                return consumer
            except KafkaError as err:
                servers = self._settings.consumer_kwargs.get("bootstrap_servers")
                log.error("cannot reach Kafka at %s (%s); retrying in %.0fs", servers, err, backoff)
                self._closing.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        return None

    def _poll_loop(self, consumer: Any) -> None:
        next_lag = next_commit = 0.0
        while not self._closing.is_set():
            now = time.monotonic()
            if now >= next_commit:
                next_commit = now + self._settings.commit_interval_seconds
                self._commit_completed(consumer)
            self._init_new_partitions(consumer)
            self._flow_control(consumer)
            batch = consumer.poll(
                timeout_ms=self._settings.poll_timeout_ms, max_records=self._settings.max_poll_records
            )
            self._send_notifications()
            for tp, records in batch.items():
                self._deliver(tp, records)
            if now >= next_lag:
                next_lag = now + self._settings.lag_interval_seconds
                self._measure_lag(consumer)

    def _send_notifications(self) -> None:
        with self._lock:
            pending, self._notifications = self._notifications, []
        for callback, assignments in pending:
            self._loop.call_soon_threadsafe(callback, assignments)

    def _deliver(self, tp: TopicPartition, records: list[Any]) -> None:
        with self._lock:
            assignment = self._assignments.get(tp)
        if assignment is None or not assignment.active or not records:
            return
        if assignment.epoch not in self._initialized:
            return  # fetched from a position older than this epoch's start; re-read after the seek
        self._next_offset[tp] = records[-1].offset + 1
        sizes = [self._record_size(r) for r in records]
        assignment.add_buffered(sum(sizes))
        self._loop.call_soon_threadsafe(self._events.records_fetched, assignment, records, sizes)

    def _commit_completed(self, consumer: Any) -> None:
        with self._lock:
            pending = [(tp, a, a.take_commit()) for tp, a in self._assignments.items()]
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, _, offset in pending if offset is not None}
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets)
        except KafkaError as err:
            # Typically a rebalance in progress: the partitions' new owner re-reads from the
            # last successful commit (at-least-once).
            log.warning("offset commit for %s failed: %s", self._settings.topic, err)
            self._loop.call_soon_threadsafe(self._events.committed, 0, True)
            return
        for _, assignment, offset in pending:
            if offset is not None:
                assignment.mark_committed(offset)
        self._loop.call_soon_threadsafe(self._events.committed, len(offsets), False)

    def _init_new_partitions(self, consumer: Any) -> None:
        """Starts each new ownership epoch at the group's committed offset.

        kafka-python keeps its in-memory fetch position for a partition that is revoked and
        assigned back to the same member, but the records between the last commit and that
        position were dropped with the old epoch: reading on from there would skip them. So every
        new assignment seeks to the committed offset, or to StartingPosition where the group has
        none, and no record of it is delivered before that.
        """
        with self._lock:
            new, self._needs_init = self._needs_init, []
        for tp in new:
            assignment = self._assignments.get(tp)
            if assignment is None or not assignment.active:
                continue
            committed = consumer.committed(tp)
            start = self._settings.start
            if committed is not None:
                assignment.mark_committed(committed)
                consumer.seek(tp, committed)
            elif start == "latest":
                consumer.seek_to_end(tp)
            elif isinstance(start, int):
                found = consumer.offsets_for_times({tp: start}).get(tp)
                if found is not None:
                    consumer.seek(tp, found.offset)
                else:
                    consumer.seek_to_end(tp)
            else:
                consumer.seek_to_beginning(tp)
            self._initialized.add(assignment.epoch)

    def _flow_control(self, consumer: Any) -> None:
        """Pauses partitions whose buffers are full and resumes drained ones.

        kafka-python 3.0.12 can leave a resumed partition stuck: data fetched while it was paused
        is parked and only restored when an internal slot is None, which it never is again after
        the first fetch. On resume we therefore drop the parked data and seek to the next offset
        we have not delivered, so it is fetched afresh (tests/sources/test_kafka.py proves it).
        """
        with self._lock:
            assignments = list(self._assignments.items())
        for tp, assignment in assignments:
            buffered = assignment.buffered_bytes
            if tp not in self._paused and buffered > self._settings.buffer_high_bytes:
                consumer.pause(tp)
                self._paused.add(tp)
            elif tp in self._paused and buffered < self._settings.buffer_low_bytes and self._fetching:
                self._paused.discard(tp)
                consumer.resume(tp)
                fetcher = getattr(consumer, "_fetcher", None)
                for parked in ("_paused_partition_records", "_paused_completed_fetches"):
                    getattr(fetcher, parked, {}).pop(tp, None)
                if tp in self._next_offset:
                    consumer.seek(tp, self._next_offset[tp])
        if not self._fetching:
            unpaused = [tp for tp, _ in assignments if tp not in self._paused]
            if unpaused:
                consumer.pause(*unpaused)
                self._paused.update(unpaused)

    def _measure_lag(self, consumer: Any) -> None:
        total = 0
        with self._lock:
            assignments = list(self._assignments.items())
        for tp, assignment in assignments:
            highwater = consumer.highwater(tp) if assignment.active else None
            base = assignment.completed if assignment.completed is not None else assignment.committed
            if highwater is not None and base is not None:
                total += max(0, highwater - base)
        self._loop.call_soon_threadsafe(self._events.lag_measured, total)

    # -- rebalance callbacks (kafka-python's IO thread): flags and notifications only --------

    def _on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        created = []
        with self._lock:
            for tp in partitions:
                if tp in self._assignments and self._assignments[tp].active:
                    continue  # kept across a cooperative rebalance
                self._epoch += 1
                assignment = PartitionAssignment(TopicPartitionId(tp.topic, tp.partition), self._epoch)
                self._assignments[tp] = assignment
                self._needs_init.append(tp)
                self._next_offset.pop(tp, None)
                self._paused.discard(tp)
                created.append(assignment)
        if created:
            with self._lock:
                self._notifications.append((self._events.partitions_assigned, created))

    def _on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        revoked = []
        with self._lock:
            for tp in partitions:
                assignment = self._assignments.pop(tp, None)
                if assignment is not None:
                    assignment.revoke()
                    self._initialized.discard(assignment.epoch)
                    revoked.append(assignment)
                self._paused.discard(tp)
        if revoked:
            with self._lock:
                self._notifications.append((self._events.partitions_revoked, revoked))

    def _lose_all(self) -> None:
        with self._lock:
            partitions = list(self._assignments)
        self._on_revoked(partitions)
        self._send_notifications()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: KafkaGroupReader) -> None:
        self._reader = reader

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self._reader._on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._reader._on_assigned(list(assigned))
