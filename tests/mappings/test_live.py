"""Mappings as live objects: the pure plan, and LiveMappings against the real registry (SQLite)
with runners that record what was asked of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from esm.config import EventSourceMappingConfig, parse_mapping
from esm.mappings.live import Change, ChangeKind, LiveMappings, plan, settled_state
from esm.stores import Store, open_store
from esm.stores.mappings import StoredMapping

KAFKA = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9"]}}


def mapping(uuid: str = "u1", **fields: Any) -> EventSourceMappingConfig:
    document = {
        "UUID": f"0b6f5c5e-0000-4000-8000-00000000000{uuid[-1]}",
        "FunctionName": "orders",
        "SelfManagedEventSource": KAFKA,
        "Topics": [f"topic-{uuid}"],
        "StartingPosition": "TRIM_HORIZON",
        **fields,
    }
    return parse_mapping(document)


A, B = mapping("u1"), mapping("u2")
S, START, STOP, RECONF, RESTART = (
    A.uuid,
    ChangeKind.START,
    ChangeKind.STOP,
    ChangeKind.RECONFIGURE,
    ChangeKind.RESTART,
)


@pytest.mark.parametrize(
    ("running", "desired", "expected"),
    [
        ({}, {}, []),
        ({}, {S: A}, [Change(START, S, A)]),
        ({}, {S: mapping("u1", Enabled=False)}, []),
        ({S: A}, {S: A}, []),
        ({S: A}, {}, [Change(STOP, S)]),
        ({S: A}, {S: mapping("u1", Enabled=False)}, [Change(STOP, S)]),
        ({S: A}, {S: mapping("u1", BatchSize=7)}, [Change(RECONF, S, mapping("u1", BatchSize=7))]),
        (
            {S: A},
            {S: mapping("u1", MaximumRetryAttempts=2, BisectBatchOnFunctionError=True)},
            [Change(RECONF, S, mapping("u1", MaximumRetryAttempts=2, BisectBatchOnFunctionError=True))],
        ),
        (
            {S: A},
            {S: mapping("u1", FilterCriteria={"Filters": [{"Pattern": '{"value": {"n": [1]}}'}]})},
            [
                Change(
                    RECONF,
                    S,
                    mapping("u1", FilterCriteria={"Filters": [{"Pattern": '{"value": {"n": [1]}}'}]}),
                )
            ],
        ),
        (
            {S: A},
            {S: mapping("u1", ParallelizationFactor=4)},
            [Change(RESTART, S, mapping("u1", ParallelizationFactor=4))],
        ),
        (
            {S: A},
            {S: mapping("u1", KafkaConsumerConfig={"fetch.max.wait.ms": 10})},
            [Change(RESTART, S, mapping("u1", KafkaConsumerConfig={"fetch.max.wait.ms": 10}))],
        ),
        ({S: A}, {S: A, B.uuid: B}, [Change(START, B.uuid, B)]),
    ],
    ids=[
        "nothing",
        "new",
        "new but disabled",
        "unchanged",
        "gone",
        "disabled",
        "batch size: in place",
        "retries and bisect: in place",
        "filter: in place",
        "lanes: restart",
        "consumer properties: restart",
        "another one",
    ],
)
def test_plan(
    running: dict[str, EventSourceMappingConfig],
    desired: dict[str, EventSourceMappingConfig],
    expected: list[Change],
) -> None:
    assert plan(running, desired) == expected


@pytest.mark.parametrize(
    ("state", "running", "settled"),
    [
        ("Creating", True, "Enabled"),
        ("Creating", False, "Disabled"),
        ("Updating", True, "Enabled"),
        ("Enabling", True, "Enabled"),
        ("Disabling", False, "Disabled"),
        ("Enabled", True, None),
        ("Disabled", False, None),
    ],
)
def test_settled_state(state: str, running: bool, settled: str | None) -> None:
    assert settled_state(StoredMapping("u", {}, state, "", 0.0, 1), running) == settled


class RecordingRunner:
    def __init__(self, log: list[str], mapping: EventSourceMappingConfig) -> None:
        self.mapping_id = mapping.uuid
        self._log = log
        self.batch_size = mapping.BatchSize

    def start(self) -> None:
        self._log.append(f"start {self.mapping_id[-1]}")

    async def shutdown(self, deadline: float) -> None:
        self._log.append(f"stop {self.mapping_id[-1]}")

    def status_reports(self, owner: str) -> dict[str, dict[str, Any]]:
        return {}

    def reconfigure(self, limits: Any, policy: Any, failure_handling: Any, invoker: Any) -> None:
        self.batch_size = limits.max_records
        self._log.append(f"reconfigure {self.mapping_id[-1]} {limits.max_records}")


class Settings:
    def __init__(self, mapping: EventSourceMappingConfig) -> None:
        from esm.shard.batching import BatchLimits

        self.limits = BatchLimits(mapping.BatchSize, 0.0)
        self.policy = self.failure_handling = self.invoker = None


class RecordingFactory:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def build(self, mapping: EventSourceMappingConfig) -> RecordingRunner:
        return RecordingRunner(self.log, mapping)

    def settings(self, mapping: EventSourceMappingConfig) -> Settings:
        return Settings(mapping)


@pytest.fixture
async def store(sqlite_store_url: str) -> AsyncIterator[Store]:
    opened = open_store(sqlite_store_url)
    yield opened
    await opened.close()


def stored(uuid_tail: str, state: str = "Creating", **fields: Any) -> StoredMapping:
    document = {
        "UUID": f"0b6f5c5e-0000-4000-8000-00000000000{uuid_tail}",
        "FunctionName": "orders",
        "SelfManagedEventSource": KAFKA,
        "Topics": [f"topic-{uuid_tail}"],
        "StartingPosition": "TRIM_HORIZON",
        **fields,
    }
    return StoredMapping(str(document["UUID"]), document, state, "User action", 1.0)


async def test_a_poller_follows_the_registry_and_moves_the_states_on(store: Store) -> None:
    factory = RecordingFactory()
    live = LiveMappings(factory, store.mappings, [mapping("u1")], 5.0, frozenset({"orders"}))  # type: ignore[arg-type]
    await live.start_file_mappings()
    assert factory.log == ["start 1"]

    created = await store.mappings.create(stored("2"))
    assert created is not None
    await live.sync()
    assert factory.log[-1] == "start 2"
    assert (await store.mappings.get(created.uuid)).state == "Enabled"  # type: ignore[union-attr]

    current = await store.mappings.get(created.uuid)
    assert current is not None
    updated = await store.mappings.replace(
        StoredMapping(
            current.uuid,
            {**current.document, "BatchSize": 7},
            "Updating",
            "User action",
            2.0,
            current.revision,
        )
    )
    assert updated is not None
    await live.sync()
    assert factory.log[-1] == "reconfigure 2 7"
    assert (await store.mappings.get(created.uuid)).state == "Enabled"  # type: ignore[union-attr]

    current = await store.mappings.get(created.uuid)
    assert current is not None
    await store.mappings.replace(
        StoredMapping(
            current.uuid,
            {**current.document, "Enabled": False},
            "Disabling",
            "User action",
            3.0,
            current.revision,
        )
    )
    await live.sync()
    assert factory.log[-1] == "stop 2"
    assert (await store.mappings.get(created.uuid)).state == "Disabled"  # type: ignore[union-attr]

    current = await store.mappings.get(created.uuid)
    assert current is not None
    await store.mappings.replace(
        StoredMapping(current.uuid, current.document, "Deleting", "User action", 4.0, current.revision)
    )
    await live.sync()
    assert await store.mappings.get(created.uuid) is None
    await live.sync()  # nothing more to do
    assert factory.log == ["start 1", "start 2", "reconfigure 2 7", "stop 2"]
    await live.shutdown(0.0)
    assert factory.log[-1] == "stop 1"


async def test_a_mapping_this_daemon_cannot_run_is_left_alone(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    factory = RecordingFactory()
    live = LiveMappings(factory, store.mappings, [], 5.0, frozenset({"billing"}))  # type: ignore[arg-type]
    created = await store.mappings.create(stored("3"))
    assert created is not None
    await live.sync()
    await live.sync()
    assert factory.log == []
    assert (await store.mappings.get(created.uuid)).state == "Creating"  # type: ignore[union-attr]
    assert sum("not in this daemon's Functions" in r.getMessage() for r in caplog.records) == 1


async def test_the_registry_is_read_only_when_it_changed(store: Store) -> None:
    reads = 0
    registry = store.mappings
    original = registry.list

    async def counted() -> list[StoredMapping]:
        nonlocal reads
        reads += 1
        return await original()

    registry.list = counted  # type: ignore[method-assign]
    live = LiveMappings(RecordingFactory(), registry, [], 5.0, frozenset({"orders"}))  # type: ignore[arg-type]
    for _ in range(5):
        await live.sync()
    assert reads == 1
    await registry.create(stored("4"))
    await live.sync()
    assert reads == 2
    for _ in range(3):
        await live.sync()
    assert reads == 3  # once more for the state the first round settled, then quiet
