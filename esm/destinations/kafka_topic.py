"""A Kafka topic: each failure record is one message whose value is the record's JSON.

kafka-python's producer blocks, so it runs in a worker thread (`asyncio.to_thread`), one call at
a time; it is created on the first record, so an unreachable broker costs nothing until then
and a failed creation is simply tried again with the next send. Messages are written with
acks=all and flushed before `send` returns. The key is the failed batch's "<topic>-<partition>"
(or, for stream sources, its shard id), so one partition's failures stay in order.

kafka-python marks which of its errors pass on their own (`KafkaError.retriable`); that class
attribute decides whether a DestinationError is retryable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from esm.destinations.encoding import StoredEntry, encode_record, read_entry
from esm.destinations.errors import DestinationError, DestinationRejectedError, DestinationUnavailableError

DEFAULT_TIMEOUT_SECONDS = 30.0
# Room for a record that carries a whole 6 MB invocation payload; the broker's own limit
# (message.max.bytes) still applies and its refusal is permanent.
_MAX_REQUEST_BYTES = 8 * 1024 * 1024
_POLL_MS = 200
_KAFKA_FAILURES = (KafkaError, OSError)


def message_key(record: dict[str, Any]) -> bytes | None:
    """The failed batch's "<topic>-<partition>" (its shard id for streams); None when it spans several."""
    kafka_info = record.get("KafkaBatchInfo")
    if isinstance(kafka_info, dict):
        partitions = kafka_info.get("recordsInfo") or {}
        return str(next(iter(partitions))).encode() if len(partitions) == 1 else None
    for info_key in ("KinesisBatchInfo", "DDBStreamBatchInfo"):
        info = record.get(info_key)
        if isinstance(info, dict) and info.get("shardId"):
            return str(info["shardId"]).encode()
    return None


class KafkaTopicDestination:
    """Produces each record to `topic`; `send` returns once all in-sync replicas have it."""

    def __init__(
        self, bootstrap_servers: Sequence[str], topic: str, *, timeout_s: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._bootstrap = list(bootstrap_servers)
        self._topic = topic
        self._timeout_s = timeout_s
        self._where = f"Kafka topic {topic!r} at {','.join(bootstrap_servers)}"
        self._producer: Any | None = None
        # One blocking call at a time: the producer is created once and flushes one record at a time.
        self._lock = asyncio.Lock()

    async def send(self, record: dict[str, Any]) -> None:
        value = encode_record(record)
        key = message_key(record)
        async with self._lock:
            await asyncio.to_thread(self._send_blocking, key, value)

    async def close(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
            if producer is not None:
                await asyncio.to_thread(producer.close, self._timeout_s)

    def _send_blocking(self, key: bytes | None, value: bytes) -> None:
        try:
            producer = self._producer_or_create()
            future = producer.send(self._topic, value=value, key=key)
            producer.flush(timeout=self._timeout_s)
            future.get(timeout=self._timeout_s)
        except _KAFKA_FAILURES as exc:
            raise translate(exc, self._where, "write a record") from exc

    def _producer_or_create(self) -> Any:
        if self._producer is None:
            timeout_ms = int(self._timeout_s * 1000)
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id="esm-destination",
                acks="all",
                linger_ms=0,
                max_request_size=_MAX_REQUEST_BYTES,
                bootstrap_timeout_ms=timeout_ms,
                max_block_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                delivery_timeout_ms=timeout_ms + 1000,  # must exceed linger + request timeout
            )
        return self._producer


def translate(exc: Exception, where: str, action: str) -> DestinationError:
    """The destination error for a Kafka failure, retryable as kafka-python's error type says."""
    message = f"Destination: {where} failed to {action}: {type(exc).__name__}: {exc}"
    retryable = isinstance(exc, OSError) or bool(getattr(exc, "retriable", False))
    return DestinationUnavailableError(message) if retryable else DestinationRejectedError(message)


async def read_topic_records(
    bootstrap_servers: Sequence[str], topic: str, *, timeout_s: float = DEFAULT_TIMEOUT_SECONDS
) -> AsyncIterator[StoredEntry]:
    """Every message of `topic` from the beginning up to the end offsets seen when reading,
    in order within each partition, as a record or an `UnreadableEntry`. Raises
    DestinationUnavailableError if the end is not reached within `timeout_s` (measured without
    progress), DestinationRejectedError if the topic does not exist."""
    where = f"Kafka topic {topic!r} at {','.join(bootstrap_servers)}"
    reader = _TopicReader(bootstrap_servers, topic, where, timeout_s)
    try:
        await asyncio.to_thread(reader.start)
        while True:
            batch = await asyncio.to_thread(reader.next_batch)
            if batch is None:
                return
            for partition, offset, value in batch:
                yield read_entry(value, f"{where} partition {partition} offset {offset}")
    finally:
        await asyncio.to_thread(reader.close)


class _TopicReader:
    """The blocking half of `read_topic_records`: a group-less consumer over every partition.

    The end of each partition is the high-water mark a fetch response reports (right on every
    broker, where ListOffsets LATEST is not on some Kafka-compatible ones).
    """

    def __init__(self, bootstrap_servers: Sequence[str], topic: str, where: str, timeout_s: float) -> None:
        self._bootstrap = list(bootstrap_servers)
        self._topic = topic
        self._where = where
        self._timeout_s = timeout_s
        self._consumer: Any | None = None
        self._partitions: list[Any] = []

    def start(self) -> None:
        timeout_ms = int(self._timeout_s * 1000)
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id="esm-destination-reader",
                group_id=None,
                enable_auto_commit=False,
                fetch_max_wait_ms=50,
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=timeout_ms + 1000,
                allow_auto_create_topics=False,  # reading must not create what it reads
            )
            partitions = self._consumer.partitions_for_topic(self._topic) or set()
            self._partitions = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            if self._partitions:
                self._consumer.assign(self._partitions)
                self._consumer.seek_to_beginning(*self._partitions)
        except _KAFKA_FAILURES as exc:
            raise translate(exc, self._where, "start reading") from exc
        if not self._partitions:  # every topic has a partition
            raise DestinationRejectedError(
                f"Destination: {self._where} does not exist (no failure record was ever written there, "
                "or the topic name is wrong)"
            )

    def next_batch(self) -> list[tuple[int, int, bytes]] | None:
        """The next messages as (partition, offset, value); None once every partition is read."""
        consumer = self._consumer
        if consumer is None or not self._partitions:
            return None
        polls_left = max(1, int(self._timeout_s * 1000 / _POLL_MS))
        while polls_left > 0:
            if self._at_end(consumer):
                return None
            try:
                fetched = consumer.poll(timeout_ms=_POLL_MS)
            except _KAFKA_FAILURES as exc:
                raise translate(exc, self._where, "read records") from exc
            batch = [
                (message.partition, message.offset, message.value)
                for messages in fetched.values()
                for message in messages
                if message.value is not None
            ]
            if batch:
                return batch
            polls_left -= 1
        raise DestinationUnavailableError(
            f"Destination: {self._where}: the end of the topic was not reached within {self._timeout_s}s"
        )

    def _at_end(self, consumer: Any) -> bool:
        for tp in self._partitions:
            highwater = consumer.highwater(tp)
            if highwater is None:
                return False
            position = consumer.position(tp, timeout_ms=_POLL_MS)
            if position is None or position < highwater:
                return False
        return True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
