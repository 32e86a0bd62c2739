"""Fakes for the AWS side of the stream mapping runner, shared by its unit tests.

Only what talks to Kinesis is faked: a `FakeStream` scripts each shard's reads (its
`ReadResult`s, errors and pauses) and lists the shards, and is plugged in through a
`StreamFlavor` whose `make_reader` / `make_lister` return it. The function is a
`RecordingInvoker` that can hold the batches of chosen partition keys. The lease store stays the
real one; `ObservedLeases` only counts and logs the calls made through it.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import inspect
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

import orjson

from esm.dispatch.outcomes import InvokeOutcome
from esm.events.kinesis import KinesisShardOrigin, event_record
from esm.mappings.stream_flavors import KINESIS, EventRecord, ShardReader, StreamFlavor
from esm.ownership.leases import SHARD_END, Lease, LeaseStore
from esm.shard.waits import REAL_WAITS
from esm.sources.stream_discovery import ShardInfo
from esm.sources.stream_shards import ReadResult, StartPosition

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
# Real Kinesis sequence numbers exceed 64 bits; the tests use numbers of that size.
_SEQUENCE_BASE = 49590338271490256608559692538361571095921575989136588800
# How long an idle read (nothing scripted) tells the shard to wait before reading again.
IDLE_POLL_SECONDS = 0.01
# A scripted pause never blocks a reader thread longer than this (a forgotten release).
_PAUSE_LIMIT_SECONDS = 10.0


def sequence(n: int) -> str:
    """The sequence number of the test's record `n` (increasing with n)."""
    return str(_SEQUENCE_BASE + n)


def entry(shard_id: str, n: int, key: str = "k", data: dict[str, Any] | None = None) -> EventRecord:
    """Record `n` of `shard_id` as Lambda's Kinesis event entry, from a boto3-shaped record."""
    origin = KinesisShardOrigin(STREAM_ARN, shard_id, "us-east-1", "arn:aws:iam::123456789012:role/esm")
    raw = {
        "SequenceNumber": sequence(n),
        "ApproximateArrivalTimestamp": datetime.now(UTC),
        "Data": orjson.dumps(data if data is not None else {"n": n}),
        "PartitionKey": key,
    }
    return event_record(raw, origin)


# One step of a shard's script: a read's result, an error the read raises, or a pause (the read
# blocks until the event is set, then takes the next step).
Step = ReadResult | Exception | threading.Event


class ScriptedReader:
    """A shard reader that plays its script, then answers idle reads (no records)."""

    def __init__(self) -> None:
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self.reads = 0

    def add(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    async def read_in(self, executor: Executor) -> ReadResult:
        """As the real readers' blocking path: the step runs on `executor`."""
        return await asyncio.get_running_loop().run_in_executor(executor, self.read_blocking)

    def read_blocking(self) -> ReadResult:
        with self._lock:
            self.reads += 1
        while True:
            with self._lock:
                step = self._steps.popleft() if self._steps else None
            if step is None:
                return ReadResult([], next_poll_delay_seconds=IDLE_POLL_SECONDS)
            if isinstance(step, threading.Event):
                step.wait(_PAUSE_LIMIT_SECONDS)
                continue
            if isinstance(step, Exception):
                raise step
            return step


@dataclasses.dataclass(frozen=True)
class Opened:
    """One `make_reader` call: which shard, from where."""

    shard_id: str
    start: StartPosition


class FakeStream:
    """The shards of one stream: their scripts, their listing, and the readers opened on them."""

    def __init__(self, shards: Sequence[ShardInfo] = (), log: builtins.list[str] | None = None) -> None:
        self.shards = list(shards)
        self.readers: dict[str, ScriptedReader] = {}
        self.opened: builtins.list[Opened] = []
        # Shared with ObservedLeases: the order of reader openings and checkpoint writes.
        self.log = log if log is not None else []
        self._pauses: builtins.list[threading.Event] = []

    @property
    def flavor(self) -> StreamFlavor:
        return dataclasses.replace(KINESIS, make_reader=self.make_reader, make_lister=self.make_lister)

    def script(self, shard_id: str, *steps: Step) -> ScriptedReader:
        reader = self.readers.setdefault(shard_id, ScriptedReader())
        reader.add(*steps)
        self._pauses += [step for step in steps if isinstance(step, threading.Event)]
        return reader

    def pause(self) -> threading.Event:
        """A pause step; released by `release_pauses` at the latest."""
        event = threading.Event()
        self._pauses.append(event)
        return event

    def release_pauses(self) -> None:
        for event in self._pauses:
            event.set()

    def make_reader(
        self,
        client: Any,
        stream_arn: str,
        shard_id: str,
        start: StartPosition,
        clock: Callable[[], float],
        idle: float,
        role_arn: str,
    ) -> ShardReader:
        self.opened.append(Opened(shard_id, start))
        self.log.append(f"read {shard_id}")
        return self.readers.setdefault(shard_id, ScriptedReader())

    def make_lister(self, client: Any, stream_arn: str) -> FakeStream:
        return self

    def list_shards(self) -> builtins.list[ShardInfo]:
        return list(self.shards)

    def opened_shards(self) -> builtins.list[str]:
        return [opened.shard_id for opened in self.opened]


class RecordingInvoker:
    """Records every batch (its entries) and succeeds; a batch holding a key in `held` waits
    until that key's event is set."""

    def __init__(self) -> None:
        self.batches: list[list[EventRecord]] = []
        self.held: dict[str, asyncio.Event] = {}

    def hold(self, key: str) -> asyncio.Event:
        return self.held.setdefault(key, asyncio.Event())

    def release_all(self) -> None:
        for event in self.held.values():
            event.set()

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        records: list[EventRecord] = orjson.loads(payload)["Records"]
        self.batches.append(records)
        for record in records:
            gate = self.held.get(record["kinesis"]["partitionKey"])
            if gate is not None:
                await gate.wait()
        return InvokeOutcome.success(b"null")

    def delivered(self, shard_id: str | None = None) -> list[str]:
        """The event IDs ("shard:sequence") invoked, in invocation order."""
        return [
            record["eventID"]
            for batch in self.batches
            for record in batch
            if shard_id is None or record["eventID"].startswith(f"{shard_id}:")
        ]


def event_ids(shard_id: str, numbers: Sequence[int]) -> list[str]:
    return [f"{shard_id}:{sequence(n)}" for n in numbers]


class ObservedLeases:
    """A real LeaseStore, passed through, with its `list` calls counted and its successful
    checkpoint writes logged (to compare with the order of reader openings)."""

    def __init__(self, inner: LeaseStore, log: builtins.list[str]) -> None:
        self.inner = inner
        self.lists = 0
        self._log = log

    async def ensure(self, stream: str, shard_id: str, parents: Sequence[str]) -> Lease:
        return await self.inner.ensure(stream, shard_id, parents)

    async def list(self, stream: str) -> builtins.list[Lease]:
        self.lists += 1
        return await self.inner.list(stream)

    async def take(
        self, stream: str, shard_id: str, owner: str, expected_token: int, ttl: float, now: float
    ) -> Lease | None:
        return await self.inner.take(stream, shard_id, owner, expected_token, ttl, now)

    async def renew(self, stream: str, shard_id: str, owner: str, token: int, ttl: float, now: float) -> bool:
        return await self.inner.renew(stream, shard_id, owner, token, ttl, now)

    async def release(self, stream: str, shard_id: str, owner: str, token: int) -> bool:
        return await self.inner.release(stream, shard_id, owner, token)

    async def checkpoint(
        self, stream: str, shard_id: str, owner: str, token: int, sequence: str, now: float
    ) -> bool:
        if sequence != SHARD_END:
            return await self.inner.checkpoint(stream, shard_id, owner, token, sequence, now)
        # Logged before the write: once it is in the store a child may start while this call is
        # still waiting for the store's answer.
        entry = f"end {shard_id}"
        self._log.append(entry)
        written = await self.inner.checkpoint(stream, shard_id, owner, token, sequence, now)
        if not written:
            self._log.remove(entry)
        return written


async def lease_of(leases: LeaseStore, namespace: str, shard_id: str) -> Lease:
    found = [lease for lease in await leases.list(namespace) if lease.shard_id == shard_id]
    assert found, f"no lease for {shard_id} in {namespace}"
    return found[0]


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    """Waits until `condition` (sync or async) holds; fails the test naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting until {what}"
        await asyncio.sleep(0.005)


class ShortWaits:
    """Waits that note the delay asked for and pass at most `longest` seconds of real time, so a
    test sees which delay a shard chose without sitting through it."""

    def __init__(self, longest: float = 0.005) -> None:
        self.longest = longest
        self.waited: list[float | None] = []

    async def halted_within(self, halt: asyncio.Event, seconds: float | None) -> bool:
        self.waited.append(seconds)
        real = self.longest if seconds is None else min(seconds, self.longest)
        return await REAL_WAITS.halted_within(halt, real) or halt.is_set()
