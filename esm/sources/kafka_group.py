"""A Kafka consumer-group member on a thread of its own: the part every Kafka client shares.

Kafka clients are not thread-safe, so one thread owns the consumer: it polls, hands records to
the event loop, pauses partitions whose buffers are full, and commits what the event loop has
marked complete. Subclasses adapt one client library (`esm.sources.kafka` for kafka-python,
`esm.sources.kafka_confluent` for confluent-kafka); this class holds the ownership bookkeeping
so both behave the same.

- Ownership: each assignment of a partition is a new `PartitionAssignment` (an epoch). Rebalance
  callbacks only flip flags and queue a notification; the consumer thread sends notifications
  before the records it delivers next, so the event loop never sees records of a partition
  before it hears the partition was assigned. No record of an epoch is delivered before the
  client has been positioned at the epoch's start (the group's committed offset, else
  StartingPosition).
- Commit protocol, at most every `commit_interval_seconds` and when closing: (1) collect every
  active assignment's completed offset that is past its last commit, (2) commit them in one
  synchronous request, (3) record them as committed. When partitions are revoked, what their
  epochs completed since the last commit is committed synchronously inside the rebalance
  callback, while this member still owns them (`_revoke_for_commit`), so a clean rebalance
  re-delivers nothing that succeeded; batches still in flight are dropped (their results are
  refused). Partitions *lost* (the member was evicted) commit nothing: Kafka would refuse it.
  After revocation an assignment yields nothing to commit, and Kafka rejects a commit from an
  old generation.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId
from esm.sources.kafka_notices import ReaderNotices

log = logging.getLogger(__name__)

Client = TypeVar("Client")


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
    # The client's own settings (kafka-python keyword arguments; translated for other clients).
    consumer_kwargs: dict[str, Any]
    # Where a partition starts when the group has no committed offset: "earliest", "latest",
    # or an epoch-milliseconds timestamp (AT_TIMESTAMP).
    start: str | int
    # Per-partition flow control: pause fetching above `high`, resume below `low` buffered bytes.
    buffer_high_bytes: int = 4 * 1024 * 1024
    buffer_low_bytes: int = 1 * 1024 * 1024
    # How long a poll waits when nothing arrives (records end the wait at once); also bounds how
    # late a commit or an assignment notification can be.
    poll_timeout_ms: int = 250
    # While a partition is paused the thread must notice soon that its buffer drained, and no
    # client can be woken from a poll: poll in short steps then.
    paused_poll_timeout_ms: int = 10
    # While nothing is in flight (every record handed to the event loop is committed, nothing
    # waits to be started, restarted or announced), a poll may wait this long: nothing can
    # complete or need a commit meanwhile, and records end the wait at once. Each poll costs the
    # client a pass over every assigned partition (kafka-python checks each one's leader epoch
    # and fetch state), most of a member's idle CPU when it holds hundreds of them.
    idle_poll_timeout_ms: int = 1000
    # When every partition's buffer is full the thread stops polling for up to this long before
    # it pauses them (see `_flow_control`).
    hold_before_pause_seconds: float = 1.0
    max_poll_records: int = 2000
    lag_interval_seconds: float = 1.0
    # Completed offsets are committed at most this often (and always when the reader closes):
    # a synchronous commit per batch would cost more than the batch; a crash re-delivers at most
    # this much completed work.
    commit_interval_seconds: float = 0.2
    reconnect_backoff_seconds: float = 1.0
    # Bounds on the client calls that wait for the brokers, so that brokers that are gone hold
    # neither the thread nor a shutdown for long (what was not committed is read again).
    commit_timeout_seconds: float = 5.0
    close_timeout_seconds: float = 2.0
    # The brokers count as unreachable (one line, esm's own) after this long without a connection.
    unreachable_after_seconds: float = 2.0
    # How often that is said again while it lasts.
    unreachable_repeat_seconds: float = 60.0
    # Who reads, for the lines above: "mapping <UUID> (function <name>)".
    label: str = "a Kafka mapping"

    # Commit completed work of revoked partitions within the rebalance (False: the behaviour
    # before, kept to measure the difference in benchmarks/hosts_failover.py).
    commit_on_revoke: bool = True
    # How long that commit may hold the rebalance up.
    revoke_commit_timeout_ms: int = 10_000

    @property
    def session_timeout_seconds(self) -> float:
        """How long the member may go without an assignment before esm says it waits for one."""
        return float(self.consumer_kwargs.get("session_timeout_ms", DEFAULT_SESSION_TIMEOUT_MS)) / 1000


def committed_through(committed: int | None, delivered_up_to: int | None) -> bool:
    """Whether a partition's commits cover every record delivered to the event loop (`delivered_up_to`:
    the offset after the last one; None when nothing was delivered)."""
    return delivered_up_to is None or (committed is not None and committed >= delivered_up_to)


def poll_timeout_ms(settings: ReaderSettings, paused: bool, settled: bool) -> int:
    """How long the next poll may wait: briefly while a partition is paused (its buffer may
    drain at any moment), long while nothing is in flight, and in between otherwise (a
    completed batch waits for the poll to end before it is committed)."""
    if paused:
        return settings.paused_poll_timeout_ms
    if settled:
        return max(settings.idle_poll_timeout_ms, settings.poll_timeout_ms)
    return settings.poll_timeout_ms


_RECONNECT_BACKOFF_CAP_SECONDS = 10.0
# Both clients' default session.timeout.ms.
DEFAULT_SESSION_TIMEOUT_MS = 45_000


# (partition, the assignment whose completed offset it is, that offset): one commit's entry.
CommitTaken = tuple[TopicPartitionId, PartitionAssignment, int]


class ClientError(Exception):
    """A client call failed in a way the reader survives (reconnect, or retry the commit)."""


class GroupReader(abc.ABC, Generic[Client]):
    def __init__(
        self,
        settings: ReaderSettings,
        events: PartitionEvents,
        loop: asyncio.AbstractEventLoop,
        record_size: Callable[[Any], int],
    ) -> None:
        self._settings = settings
        self._events = events
        self._loop = loop
        self._record_size = record_size
        self._lock = threading.Lock()
        self._assignments: dict[TopicPartitionId, PartitionAssignment] = {}
        self._needs_init: list[TopicPartitionId] = []
        self._restarts: list[TopicPartitionId] = []
        self._initialized: set[int] = set()  # epochs whose start position is set
        self._paused: set[TopicPartitionId] = set()
        self._next_offset: dict[TopicPartitionId, int] = {}
        self._epoch = 0
        self._notifications: list[
            tuple[Callable[[list[PartitionAssignment]], None], list[PartitionAssignment]]
        ] = []
        self._fetching = True
        self._all_full_since: float | None = None
        # Partitions fenced because the group went silent for a session (see `_self_fence`).
        self._fenced: set[TopicPartitionId] = set()
        self._closing = threading.Event()
        self._notices = ReaderNotices(
            settings.label,
            settings.topic,
            settings.consumer_kwargs,
            settings.session_timeout_seconds,
            settings.unreachable_after_seconds,
            settings.unreachable_repeat_seconds,
        )
        self._thread = threading.Thread(target=self._run, name=f"kafka-reader-{settings.topic}", daemon=True)

    # -- what a client adapter provides -----------------------------------------------------

    @abc.abstractmethod
    def _connect(self) -> Client:
        """A new consumer subscribed to the topic; raises ClientError when Kafka cannot be reached."""

    @abc.abstractmethod
    def _poll(self, client: Client, timeout_ms: int) -> dict[TopicPartitionId, list[Any]]:
        """Records by partition as event entries (`esm.events.kafka.event_record`), in offset
        order; waits at most `timeout_ms` for the first one."""

    @abc.abstractmethod
    def _commit(self, client: Client, offsets: dict[TopicPartitionId, int]) -> None:
        """Commits synchronously within `_commit_timeout()`; raises ClientError when the group
        refuses it or the time is up."""

    @abc.abstractmethod
    def _position_at_start(self, client: Client, tp: TopicPartitionId) -> int | None:
        """Positions a new assignment at the committed offset (returned) or StartingPosition."""

    @abc.abstractmethod
    def _pause(self, client: Client, tps: Sequence[TopicPartitionId]) -> None: ...

    @abc.abstractmethod
    def _resume(self, client: Client, tp: TopicPartitionId, next_offset: int | None) -> None:
        """Fetches again from `next_offset` (the first record not delivered), if known."""

    @abc.abstractmethod
    def _highwater(self, client: Client, tp: TopicPartitionId) -> int | None: ...

    @abc.abstractmethod
    def _close_client(self, client: Client) -> None:
        """Leaves the group and closes, waiting at most about `close_timeout_seconds` for the
        brokers."""

    def _reachable(self, client: Client) -> bool | None:
        """Whether the client is connected to a broker now (None: the client cannot tell)."""
        return None

    def _waiting_for_assignment(self, client: Client) -> bool | None:
        """Whether the member waits for the group coordinator to (re)assign partitions of a topic
        that has some (None: the client cannot tell)."""
        return None

    def _group_contact(self, client: Client) -> tuple[float, float] | None:
        """(monotonic time the group coordinator last answered this member, the session timeout
        in seconds), for self-fencing; None if the client cannot tell."""
        return None

    def _rebalancing(self, client: Client) -> bool:
        """Whether a rebalance round goes on while this thread keeps reading (commits wait for
        its end: the group refuses them meanwhile)."""
        return False

    def _still_assigned(self, client: Client) -> set[TopicPartitionId]:
        """The partitions the client holds now (asked after a fence, once the group answers)."""
        return set()

    # -- control, from the event loop -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop_fetching(self) -> None:
        """Phase one of shutdown: no new records; commits go on."""
        self._fetching = False

    def restart(self, tp: TopicPartitionId) -> None:
        """Starts a new ownership epoch for a partition this member still owns: the current one
        is revoked here and the partition is read again from its committed offset (used when
        the partition's consumer failed unexpectedly). Thread-safe."""
        with self._lock:
            self._restarts.append(tp)

    def close(self, timeout: float) -> None:
        """Phase two: commit what completed, leave the group, end the thread (blocking)."""
        self._closing.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("kafka reader for %s did not stop within %.1fs", self._settings.topic, timeout)

    # -- the consumer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            client = self._connect_with_backoff()
            if client is None:
                return
            try:
                self._poll_loop(client)
            except Exception:
                log.exception("kafka reader for %s failed; reconnecting", self._settings.topic)
                self._closing.wait(self._settings.reconnect_backoff_seconds)
            finally:
                self._commit_completed(client)
                try:
                    self._close_client(client)
                except Exception:
                    log.debug("closing the kafka consumer failed", exc_info=True)
                self._lose_all()

    def _connect_with_backoff(self) -> Client | None:
        backoff = self._settings.reconnect_backoff_seconds
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                return self._connect()
            except ClientError as err:
                self._notices.reachability(False, time.monotonic(), started, str(err))
                log.debug(
                    "cannot reach Kafka for topic %s (%s); retrying in %.0fs",
                    self._settings.topic,
                    err,
                    backoff,
                )
                self._closing.wait(backoff)
                backoff = min(backoff * 2, _RECONNECT_BACKOFF_CAP_SECONDS)
        return None

    def _say_what_it_waits_for(self, client: Client, now: float) -> None:
        reachable = self._reachable(client)
        if reachable is not None:
            self._notices.reachability(reachable, now)
        with self._lock:
            owned = len(self._assignments)
        self._notices.assignment(owned, not owned and self._waiting_for_assignment(client) is True, now)

    def _poll_loop(self, client: Client) -> None:
        next_lag = next_commit = 0.0
        batch: dict[TopicPartitionId, list[Any]] = {}
        while not self._closing.is_set():
            now = time.monotonic()
            self._say_what_it_waits_for(client, now)
            if now >= next_commit and not self._rebalancing(client):
                next_commit = now + self._settings.commit_interval_seconds
                self._commit_completed(client)
            if now >= next_lag:
                next_lag = now + self._settings.lag_interval_seconds
                self._measure_lag(client)
            self._self_fence(client, now)
            self._apply_restarts(client)
            self._init_new_partitions(client)
            if self._flow_control(client, now):
                self._closing.wait(self._settings.paused_poll_timeout_ms / 1000)
                continue
            # A poll that just returned records means work in flight: no need to look.
            settled = not batch and not self._paused and self._settled()
            batch = self._poll(client, poll_timeout_ms(self._settings, bool(self._paused), settled))
            self._send_notifications()
            if batch:
                # A long poll may have outlasted the session: fence before delivering, not after.
                self._self_fence(client, time.monotonic())
            for tp, records in batch.items():
                self._deliver(tp, records)

    def _settled(self) -> bool:
        """Nothing in flight: every record delivered is committed, and no partition waits to be
        started, restarted, resumed or announced to the event loop (see `idle_poll_timeout_ms`)."""
        with self._lock:
            if self._needs_init or self._restarts or self._notifications or self._fenced:
                return False
            assignments = list(self._assignments.items())
        if not self._fetching:
            return False  # shutting down: the close should not wait for a long poll
        return all(
            committed_through(assignment.committed, self._next_offset.get(tp))
            for tp, assignment in assignments
        )

    def _send_notifications(self) -> None:
        with self._lock:
            pending, self._notifications = self._notifications, []
        for callback, assignments in pending:
            self._loop.call_soon_threadsafe(callback, assignments)

    def _deliver(self, tp: TopicPartitionId, records: list[Any]) -> None:
        with self._lock:
            assignment = self._assignments.get(tp)
        if assignment is None or not assignment.active or not records:
            return
        if assignment.epoch not in self._initialized:
            return  # fetched from a position older than this epoch's start; re-read after positioning
        assignment.fetched_from(records[0]["offset"])
        self._next_offset[tp] = records[-1]["offset"] + 1
        sizes = list(map(self._record_size, records))
        assignment.add_buffered(sum(sizes))
        self._loop.call_soon_threadsafe(self._events.records_fetched, assignment, records, sizes)

    def _commit_timeout(self) -> float:
        """How long a commit may wait for the brokers. Closing: briefly (what did not commit
        is read again)."""
        settings = self._settings
        if self._closing.is_set():
            return settings.close_timeout_seconds
        # At most half a session: the thread must see in time that the group went silent
        # (`_self_fence`).
        return min(settings.commit_timeout_seconds, settings.session_timeout_seconds / 2)

    def _commit_completed(self, client: Client) -> None:
        with self._lock:
            pending = [(tp, a, a.take_commit()) for tp, a in self._assignments.items()]
        taken = [(tp, assignment, offset) for tp, assignment, offset in pending if offset is not None]
        if not taken:
            return
        if not self._closing.is_set() and self._commit_in_background(client, taken):
            return
        try:
            self._commit(client, {tp: offset for tp, _, offset in taken})
        except ClientError as err:
            self._commit_failed(err)
            return
        self._commit_succeeded(taken)

    def _commit_in_background(self, client: Client, taken: list[CommitTaken]) -> bool:
        """Sends a periodic commit without waiting for it, if the client can (then it calls
        `_commit_succeeded` / `_commit_failed` from a later poll); False: commit synchronously."""
        return False

    def _commit_succeeded(self, taken: Sequence[CommitTaken]) -> None:
        for _, assignment, offset in taken:
            assignment.mark_committed(offset)
        self._loop.call_soon_threadsafe(self._events.committed, len(taken), False)

    def _commit_failed(self, err: Exception) -> None:
        # Typically a rebalance in progress: the partitions' new owner re-reads from the last
        # successful commit (at-least-once), or the next commit carries these offsets.
        level = logging.DEBUG if self._notices.brokers_down else logging.WARNING  # said already
        log.log(level, "offset commit for %s failed: %s", self._settings.topic, err)
        self._loop.call_soon_threadsafe(self._events.committed, 0, True)

    def _self_fence(self, client: Client, now: float) -> None:
        """A member that has not heard from the group coordinator for a whole session timeout
        has been evicted by now, and its partitions may be with another member: it stops them
        (as lost: no commit) rather than invoke on. When the coordinator answers again, the
        partitions the client still holds (no rebalance took them) start new epochs from the
        committed offsets; the others come back through the rebalance, like any assignment."""
        contact = self._group_contact(client)
        if contact is None:
            return
        heard_at, session = contact
        if now - heard_at > session:
            with self._lock:
                owned = list(self._assignments)
            if owned:
                log.warning(
                    "no answer from the Kafka group coordinator for %s for %.1fs (session.timeout.ms): "
                    "stopping %s until the group gives them back",
                    self._settings.topic,
                    now - heard_at,
                    ", ".join(str(tp) for tp in sorted(owned)),
                )
                self._fenced.update(owned)
                self._on_revoked(owned)
                self._send_notifications()
        elif self._fenced:
            back = sorted((self._fenced & self._still_assigned(client)) - set(self._assignments))
            self._fenced.clear()
            if back:
                log.info(
                    "Kafka group coordinator answers again for %s: resuming %s", self._settings.topic, back
                )
                self._on_assigned(back)

    def _apply_restarts(self, client: Client) -> None:
        with self._lock:
            restarts, self._restarts = self._restarts, []
            owned = [tp for tp in restarts if tp in self._assignments]
        if owned:
            uncommitted = self._revoke_for_commit(owned)
            error = None
            if uncommitted:
                try:
                    self._commit(client, uncommitted)
                except ClientError as err:
                    error = err
            self._revoke_committed(uncommitted, error)
            self._on_assigned(owned)

    def _init_new_partitions(self, client: Client) -> None:
        """Starts each new ownership epoch at the group's committed offset.

        A client may keep its in-memory fetch position for a partition that is revoked and
        assigned back to the same member (kafka-python does), but the records between the last
        commit and that position were dropped with the old epoch: reading on from there would
        skip them. So every new assignment is positioned at its start before any of its records
        is delivered.
        """
        with self._lock:
            new, self._needs_init = self._needs_init, []
        for tp in new:
            assignment = self._assignments.get(tp)
            if assignment is None or not assignment.active:
                continue
            committed = self._position_at_start(client, tp)
            if committed is not None:
                assignment.mark_committed(committed)
            self._initialized.add(assignment.epoch)

    def _flow_control(self, client: Client, now: float) -> bool:
        """Pauses partitions whose buffers are full and resumes drained ones.

        Pausing makes both clients drop what they prefetched and fetch it again on resume, which
        at full speed (every buffer full, batches in flight) costs more than it saves. So while
        every partition is full the thread first just stops polling (returns True); only when
        that lasts past `hold_before_pause_seconds` (a stuck function) are they paused, so the
        thread can poll again: group membership needs regular polls.
        """
        with self._lock:
            assignments = list(self._assignments.items())
        high = self._settings.buffer_high_bytes
        if self._fetching and assignments and all(a.buffered_bytes > high for _, a in assignments):
            if self._all_full_since is None:
                self._all_full_since = now
            if now - self._all_full_since < self._settings.hold_before_pause_seconds:
                return True
        else:
            self._all_full_since = None
        for tp, assignment in assignments:
            buffered = assignment.buffered_bytes
            if tp not in self._paused and buffered > self._settings.buffer_high_bytes:
                self._pause(client, [tp])
                self._paused.add(tp)
            elif tp in self._paused and buffered < self._settings.buffer_low_bytes and self._fetching:
                self._paused.discard(tp)
                self._resume(client, tp, self._next_offset.get(tp))
        if not self._fetching:
            unpaused = [tp for tp, _ in assignments if tp not in self._paused]
            if unpaused:
                self._pause(client, unpaused)
                self._paused.update(unpaused)
        return False

    def _measure_lag(self, client: Client) -> None:
        """Records not yet processed: from the first record not completed (the completed offset,
        else the group's committed one, else where this ownership started reading, so a first
        batch that is stuck counts) to the high-water mark."""
        total = 0
        with self._lock:
            assignments = list(self._assignments.items())
        for tp, assignment in assignments:
            highwater = self._highwater(client, tp) if assignment.active else None
            base = assignment.completed
            if base is None:
                base = assignment.committed
            if base is None:
                base = assignment.first_fetched
            if highwater is not None and base is not None:
                total += max(0, highwater - base)
        self._loop.call_soon_threadsafe(self._events.lag_measured, total)

    # -- rebalance callbacks: flags and notifications only ----------------------------------

    def _on_assigned(
        self, partitions: Sequence[TopicPartitionId], committed: dict[TopicPartitionId, int] | None = None
    ) -> list[PartitionAssignment]:
        """New epochs for `partitions`. `committed` is given by a client that positioned the
        partitions itself while assigning them (their records may be delivered at once); without
        it the consumer thread positions them before delivering anything."""
        created = []
        with self._lock:
            for tp in partitions:
                if tp in self._assignments and self._assignments[tp].active:
                    continue  # kept across a cooperative rebalance
                self._epoch += 1
                assignment = PartitionAssignment(tp, self._epoch)
                self._assignments[tp] = assignment
                if committed is None:
                    self._needs_init.append(tp)
                else:
                    if tp in committed:
                        assignment.mark_committed(committed[tp])
                    self._initialized.add(assignment.epoch)
                self._next_offset.pop(tp, None)
                self._paused.discard(tp)
                created.append(assignment)
            if created:
                self._notifications.append((self._events.partitions_assigned, created))
        return created

    def _on_revoked(self, partitions: Sequence[TopicPartitionId]) -> dict[TopicPartitionId, int]:
        """Ends the epochs of `partitions`; returns what they completed since their last commit."""
        revoked = []
        uncommitted: dict[TopicPartitionId, int] = {}
        with self._lock:
            for tp in partitions:
                assignment = self._assignments.pop(tp, None)
                if assignment is not None:
                    offset = assignment.revoke()
                    if offset is not None:
                        uncommitted[tp] = offset
                    self._initialized.discard(assignment.epoch)
                    revoked.append(assignment)
                self._paused.discard(tp)
            if revoked:
                self._notifications.append((self._events.partitions_revoked, revoked))
        return uncommitted

    def _revoke_for_commit(self, partitions: Sequence[TopicPartitionId]) -> dict[TopicPartitionId, int]:
        """Ends the epochs of `partitions` being revoked (not lost) and returns the offsets the
        adapter must commit before the rebalance goes on (then it calls `_revoke_committed`)."""
        uncommitted = self._on_revoked(partitions)
        return uncommitted if self._settings.commit_on_revoke else {}

    def _revoke_committed(self, offsets: dict[TopicPartitionId, int], error: Exception | None) -> None:
        """The outcome of the commit made while revoking: counted like any other commit."""
        if not offsets:
            return
        if error is not None:
            # The new owner re-reads these records from the last commit (at-least-once).
            log.warning(
                "offset commit of revoked partitions %s of %s failed: %s",
                ", ".join(str(tp) for tp in sorted(offsets)),
                self._settings.topic,
                error,
            )
            self._loop.call_soon_threadsafe(self._events.committed, 0, True)
            return
        self._loop.call_soon_threadsafe(self._events.committed, len(offsets), False)

    def _rebalance_started(self, kept: Sequence[TopicPartitionId]) -> None:
        """The member rejoins its group under the cooperative protocol and reads on from the
        partitions it owns; the rebalance's end shows as `assigned` / `revoked` lines."""
        log.info(
            "%s: consumer group rebalancing; reading on from %s meanwhile",
            self._settings.label,
            ", ".join(str(tp) for tp in kept),
        )

    def _lose_all(self) -> None:
        with self._lock:
            partitions = list(self._assignments)
        self._on_revoked(partitions)
        self._send_notifications()
