"""A shard with several lanes (ParallelizationFactor): order per key, and a checkpoint that never
passes a record that has not completed (checked against a brute-force oracle)."""

from __future__ import annotations

import asyncio
import random

import orjson
from shard_metrics import counting_metrics

from esm.dispatch.outcomes import InvokeOutcome
from esm.shard.lanes import lane_for
from esm.shard.state import ShardState

from .fakes import FakeSource, feed, shard_of

KEYS = [f"key-{n}" for n in range(20)]


class Oracle:
    """Records which records' invocations returned, and checks each checkpoint against them."""

    def __init__(self) -> None:
        self.completed: set[int] = set()
        self.violations: list[str] = []

    def check(self, checkpoint: int) -> None:
        unfinished = [record for record in range(checkpoint + 1) if record not in self.completed]
        if unfinished:
            self.violations.append(f"checkpoint {checkpoint} passes unfinished records {unfinished[:5]}")


class CheckedSource(FakeSource):
    def __init__(self, oracle: Oracle, keys: dict[int, str | None]) -> None:
        super().__init__(keys=keys.__getitem__)
        self._oracle = oracle

    async def checkpoint_through(self, record: int) -> bool:
        self._oracle.check(record)
        return await super().checkpoint_through(record)


class JitteryInvoker:
    """Each batch takes a random while (seeded), so lanes finish out of order; notes what ran."""

    def __init__(self, oracle: Oracle, seed: int) -> None:
        self._oracle = oracle
        self._rand = random.Random(seed)
        self.started: list[list[int]] = []
        self.in_flight: set[int] = set()
        self.overlaps: list[tuple[int, int]] = []

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        batch = [int(r) for r in payload.decode().split(",")]
        self.started.append(batch)
        await asyncio.sleep(self._rand.random() * 0.003)
        self._oracle.completed.update(batch)
        return InvokeOutcome.success(b"null")


async def _run_to(shard_source: FakeSource, last: int, task: asyncio.Task[bool]) -> None:
    async with asyncio.timeout(10):
        while shard_source.checkpoints[-1:] != [last]:
            await asyncio.sleep(0.001)


async def test_lanes_keep_key_order_and_never_checkpoint_past_an_unfinished_record() -> None:
    for seed in range(8):
        rand = random.Random(seed)
        keys: dict[int, str | None] = {n: rand.choice(KEYS) for n in range(600)}
        oracle = Oracle()
        source, invoker = CheckedSource(oracle, keys), JitteryInvoker(oracle, seed)
        shard = shard_of(source, invoker, batch=rand.randint(1, 7), lanes=rand.randint(2, 10))
        task = asyncio.create_task(shard.run())
        for start in range(0, 600, 50):  # delivered in pieces, as fetches arrive
            feed(shard, list(range(start, start + 50)))
            await asyncio.sleep(0)
        await _run_to(source, 599, task)
        shard.request_shutdown()
        await task
        assert oracle.violations == [], f"seed {seed}"
        assert source.checkpoints == sorted(source.checkpoints), "the checkpoint only moves forward"
        for key in KEYS:
            order = [r for batch in invoker.started for r in batch if keys[r] == key]
            assert order == sorted(order), f"seed {seed}: {key} out of order"
            assert order == sorted(set(order)), f"seed {seed}: {key} delivered twice"
        lanes_used = {lane_for(keys[b[0]] or "", len(shard.lanes)) for b in invoker.started}
        assert len(lanes_used) > 1


async def test_a_batch_holds_one_lane_only_and_keyless_records_spread_by_position() -> None:
    keys: dict[int, str | None] = {n: None for n in range(40)}
    source = FakeSource(keys=keys.__getitem__)
    oracle = Oracle()
    invoker = JitteryInvoker(oracle, seed=1)
    shard = shard_of(source, invoker, batch=10, lanes=4)
    feed(shard, list(range(40)))
    task = asyncio.create_task(shard.run())
    await _run_to(source, 39, task)
    shard.request_shutdown()
    await task
    assert sorted(r for batch in invoker.started for r in batch) == list(range(40))
    for batch in invoker.started:
        assert {r % 4 for r in batch} == {batch[0] % 4}, "a lane's records, by offset"


class HeldInvoker:
    """Holds every call until released; counts calls."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def invoke(self, payload: bytes) -> InvokeOutcome:
        self.calls += 1
        await self.release.wait()
        return InvokeOutcome.success(orjson.dumps(None))


async def test_losing_the_shard_drops_every_lanes_results_and_buffers() -> None:
    keys = {n: KEYS[n % 4] for n in range(100)}
    source = FakeSource(keys=keys.__getitem__)
    invoker = HeldInvoker()
    shard_metrics, counts = counting_metrics()
    shard = shard_of(source, invoker, batch=5, lanes=4, shard_metrics=shard_metrics)
    feed(shard, list(range(100)))
    task = asyncio.create_task(shard.run())
    async with asyncio.timeout(5):
        while invoker.calls < len({lane_for(k, 4) for k in keys.values()}):
            await asyncio.sleep(0.001)
    source.owned = False  # revoked: the checkpointer refuses from now on
    shard.lease_lost()
    invoker.release.set()
    await asyncio.wait_for(task, 5)
    assert source.checkpoints == []
    assert shard.state is ShardState.SHUT_DOWN
    assert counts["records_delivered"].value == 0
    # everything buffered or in flight is left for the next owner, and counted
    assert counts["records_abandoned"].value == 100
