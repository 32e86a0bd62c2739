"""The confluent-kafka client (librdkafka) behind `GroupReader`: the fast option.

Fetching and decoding run in librdkafka's own threads, outside the GIL, which leaves the
poller's Python time to batching, events and invocations (benchmarks/ shows the difference).
Rebalance callbacks run inside `consume()` on the reader's thread, so a new assignment is
positioned (committed offset, else StartingPosition) before librdkafka fetches anything for it.
Periodic commits are asynchronous: librdkafka holds a commit made while its group rebalances
until the round ends (seconds on some brokers), and a synchronous one would stop the partitions
the member keeps. Their outcome arrives through `on_commit`, served by the next poll on the same
thread; the commit of revoked partitions inside the rebalance stays synchronous.
Install with `pip install 'esm[confluent]'` and select with `KafkaClient: confluent-kafka`.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from esm.config.librdkafka_properties import librdkafka_config
from esm.events.kafka import LIBRDKAFKA_TIMESTAMP_TYPES, NO_TIMESTAMP_TYPE, event_record, unreadable_record
from esm.ownership.kafka_assignment import PartitionAssignment, TopicPartitionId
from esm.sources.kafka_group import ClientError, CommitTaken, GroupReader, PartitionEvents, ReaderSettings

log = logging.getLogger(__name__)

# `Message.headers()` fails on a header name that is not UTF-8 in a way CPython only reports
# through its generic call path: it returns a list holding a NULL with the UnicodeDecodeError
# still set (SystemError there). A hot loop's specialised `m.headers()` call does not check that
# and hands the broken list on (a crash when read). Called through methodcaller, the failure is
# always raised, and the message is never asked again.
_headers_of = operator.methodcaller("headers")
STATISTICS_INTERVAL_MS = 1000

T = TypeVar("T")


def _serving_callbacks(what: str, call: Callable[[], T]) -> T:
    """`call()`, a client call that serves librdkafka's callbacks (poll, consume, close), with its
    failures as ClientError, which the reader's thread handles (it reconnects).

    When a rebalance callback fails inside such a call (its committed offsets timed out, say),
    confluent-kafka raises the failure as a bare KafkaError object. No `except Exception`, not
    even `except BaseException`, matches that object: it would end the reader's thread, and
    with it the mapping's reading.
    """
    try:
        return call()
    except KafkaException as err:
        raise ClientError(f"{what}: {err}") from err
    except:  # noqa: E722 (the bare except is the point: see above)
        error = sys.exc_info()[1]
        if isinstance(error, BaseException):
            raise  # an exception of our own callbacks (or an interrupt) goes on as it is
        raise ClientError(f"{what}: {error!r}") from None


class ConfluentGroupReader(GroupReader[Any]):
    def __init__(
        self,
        settings: ReaderSettings,
        events: PartitionEvents,
        loop: asyncio.AbstractEventLoop,
        record_size: Callable[[Any], int],
        consumer_factory: Callable[..., Any] = Consumer,
    ) -> None:
        super().__init__(settings, events, loop, record_size)
        self._config = librdkafka_config(settings.consumer_kwargs)
        # Incremental rebalancing (cooperative-sticky): callbacks then name only the partitions
        # that move, and take them with incremental_assign/unassign.
        self._cooperative = "cooperative" in str(self._config.get("partition.assignment.strategy", ""))
        self._consumer_factory = consumer_factory
        self._brokers_up: bool | None = None
        # Periodic commits sent and not yet answered: (partition, offset) -> its assignment.
        self._commits_in_flight: dict[tuple[TopicPartitionId, int], PartitionAssignment] = {}

    def _on_stats(self, stats_json: str) -> None:
        """librdkafka's statistics (served by poll, on the reader's thread): is a broker UP?"""
        try:
            brokers = orjson.loads(stats_json).get("brokers", {})
        except (orjson.JSONDecodeError, AttributeError):
            return
        self._brokers_up = any(broker.get("state") == "UP" for broker in brokers.values())

    def _reachable(self, client: Any) -> bool | None:
        return self._brokers_up

    def _connect(self) -> Any:
        # Statistics tell whether any broker is up (librdkafka says when they all went down, but
        # not when one is back): see `_reachable`.
        config = {
            "statistics.interval.ms": STATISTICS_INTERVAL_MS,
            **self._config,
            "stats_cb": self._on_stats,
            "on_commit": self._on_commit,
        }
        self._brokers_up = None
        self._commits_in_flight.clear()
        try:
            consumer = self._consumer_factory(config, logger=logging.getLogger("esm.librdkafka"))
            consumer.subscribe(
                [self._settings.topic], on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lose
            )
        except KafkaException as err:
            raise ClientError(str(err)) from err
        return consumer

    def _poll(self, client: Any, timeout_ms: int) -> dict[TopicPartitionId, list[Any]]:
        # consume() waits until it has num_messages or the timeout passes, which would hold
        # records back: wait for the first one, then take what is already there.
        first = _serving_callbacks("polling", lambda: client.poll(timeout_ms / 1000))
        if first is None:
            return {}
        more = self._settings.max_poll_records - 1
        rest = _serving_callbacks("polling", lambda: client.consume(num_messages=more, timeout=0))
        messages = [first, *rest]
        batch: dict[TopicPartitionId, list[Any]] = {}
        current: list[Any] = []
        topic, partition = "", -1
        types = LIBRDKAFKA_TIMESTAMP_TYPES
        for m in messages:
            if m.error() is not None:
                log.warning("kafka fetch error on %s: %s", self._settings.topic, m.error())
                continue
            if m.partition() != partition or m.topic() != topic:
                topic, partition = m.topic(), m.partition()
                current = batch.setdefault(TopicPartitionId(topic, partition), [])
            kind, timestamp = m.timestamp()
            timestamp_type = types.get(kind, NO_TIMESTAMP_TYPE)
            try:
                headers = _headers_of(m)
            except (SystemError, UnicodeDecodeError) as err:
                current.append(self._unreadable(m, timestamp, timestamp_type, err))
                continue
            current.append(
                event_record(
                    topic, partition, m.offset(), timestamp, timestamp_type, m.key(), m.value(), headers
                )
            )
        return batch

    def _unreadable(self, m: Any, timestamp: int, timestamp_type: str, err: Exception) -> dict[str, Any]:
        """confluent-kafka fails on header names that are not UTF-8 and offers no raw bytes: the
        record cannot be delivered whole (kafka-python reads such names as Java does)."""
        cause = err.__cause__ or err.__context__ or err
        reason = (
            f"its header names are not UTF-8 and confluent-kafka cannot read them ({cause}); "
            "KafkaClient: kafka-python delivers such records as Lambda does"
        )
        log.warning(
            "kafka %s-%d offset %d: %s; it goes to the on-failure destination",
            m.topic(),
            m.partition(),
            m.offset(),
            reason,
        )
        return unreadable_record(
            m.topic(), m.partition(), m.offset(), timestamp, timestamp_type, m.key(), m.value(), reason
        )

    def _commit(self, client: Any, offsets: dict[TopicPartitionId, int]) -> None:
        # librdkafka bounds a synchronous commit by its own request timeouts (no per-call one).
        try:
            client.commit(
                offsets=[TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as err:
            raise ClientError(str(err)) from err

    def _commit_in_background(self, client: Any, taken: list[CommitTaken]) -> bool:
        fresh = [(tp, a, offset) for tp, a, offset in taken if (tp, offset) not in self._commits_in_flight]
        if not fresh:
            return True  # the same offsets are on their way already
        for tp, assignment, offset in fresh:
            self._commits_in_flight[(tp, offset)] = assignment
        try:
            client.commit(
                offsets=[TopicPartition(tp.topic, tp.partition, offset) for tp, _, offset in fresh],
                asynchronous=True,
            )
        except KafkaException as err:
            for tp, _, offset in fresh:
                self._commits_in_flight.pop((tp, offset), None)
            self._commit_failed(ClientError(str(err)))
        return True

    def _on_commit(self, err: Any, partitions: list[Any]) -> None:
        """librdkafka's answer to a commit (served by poll, on the reader's thread). Only the
        periodic commits sent by `_commit_in_background` are waited for here."""
        succeeded: list[CommitTaken] = []
        error = None
        for p in partitions or []:
            tp = TopicPartitionId(p.topic, p.partition)
            assignment = self._commits_in_flight.pop((tp, p.offset), None)
            if assignment is None:
                continue
            if err is None and p.error is None:
                succeeded.append((tp, assignment, p.offset))
            else:
                error = err or p.error
        if succeeded:
            self._commit_succeeded(succeeded)
        if error is not None:
            self._commit_failed(ClientError(str(error)))

    def _position_at_start(self, client: Any, tp: TopicPartitionId) -> int | None:
        # New assignments are positioned while they are assigned (`_assign`); this serves a
        # restarted epoch of a partition that stays assigned.
        # Bounded as the commits are: brokers gone just then must not hold the thread for long.
        wanted = [TopicPartition(tp.topic, tp.partition)]
        [committed] = client.committed(wanted, timeout=self._commit_timeout())
        offset = committed.offset if committed.offset >= 0 else self._start_offset(client, tp)
        client.seek(TopicPartition(tp.topic, tp.partition, offset))
        return committed.offset if committed.offset >= 0 else None

    def _start_offset(self, client: Any, tp: TopicPartitionId) -> int:
        """Where StartingPosition puts a partition the group has no offset for."""
        start = self._settings.start
        if start == "latest":
            return int(OFFSET_END)
        if isinstance(start, int):
            wanted = [TopicPartition(tp.topic, tp.partition, start)]
            [found] = client.offsets_for_times(wanted, timeout=self._commit_timeout())
            return int(found.offset) if found.offset >= 0 else int(OFFSET_END)
        return int(OFFSET_BEGINNING)

    def _pause(self, client: Any, tps: Sequence[TopicPartitionId]) -> None:
        client.pause([TopicPartition(tp.topic, tp.partition) for tp in tps])

    def _resume(self, client: Any, tp: TopicPartitionId, next_offset: int | None) -> None:
        # librdkafka drops what it prefetched for a paused partition; a seek makes it fetch again
        # at once (a plain resume was seen to wait about a second).
        client.resume([TopicPartition(tp.topic, tp.partition)])
        if next_offset is not None:
            client.seek(TopicPartition(tp.topic, tp.partition, next_offset))

    def _highwater(self, client: Any, tp: TopicPartitionId) -> int | None:
        _, high = client.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
        return int(high) if high is not None and high >= 0 else None

    def _close_client(self, client: Any) -> None:
        # librdkafka bounds leaving the group by its own timeouts.
        _serving_callbacks("closing the consumer", client.close)

    # -- rebalance callbacks: inside consume(), on the reader's thread -----------------------

    def _assign(self, client: Any, partitions: list[Any]) -> None:
        # If the lookup times out, the poll that serves this callback fails (`_serving_callbacks`)
        # and the reader reconnects: nothing was read or committed for these partitions yet.
        found = client.committed(partitions, timeout=self._commit_timeout())
        committed = {TopicPartitionId(p.topic, p.partition): p.offset for p in found}
        positioned = []
        for p in partitions:
            tp = TopicPartitionId(p.topic, p.partition)
            offset = committed.get(tp, -1)
            if offset < 0:
                offset = self._start_offset(client, tp)
            positioned.append(TopicPartition(p.topic, p.partition, offset))
        if self._cooperative:
            client.incremental_assign(positioned)  # only the partitions added: the rest keep flowing
        else:
            client.assign(positioned)
        self._on_assigned(
            [TopicPartitionId(p.topic, p.partition) for p in partitions],
            committed={tp: offset for tp, offset in committed.items() if offset >= 0},
        )

    def _revoke(self, client: Any, partitions: list[Any]) -> None:
        offsets = self._revoke_for_commit([TopicPartitionId(p.topic, p.partition) for p in partitions])
        error: Exception | None = None
        if offsets:
            try:
                self._commit(client, offsets)  # still the owner: inside the rebalance callback
            except ClientError as err:
                error = err
        self._revoke_committed(offsets, error)
        self._unassign(client, partitions)

    def _lose(self, client: Any, partitions: list[Any]) -> None:
        # Evicted: the partitions may have a new owner already; a commit would be refused.
        self._on_revoked([TopicPartitionId(p.topic, p.partition) for p in partitions])
        self._unassign(client, partitions)

    def _unassign(self, client: Any, partitions: list[Any]) -> None:
        if self._cooperative:
            client.incremental_unassign(partitions)
        else:
            client.unassign()
