"""The control API's mapping registry on both stores: create once, compare-and-set, a generation
that moves with every change."""

from __future__ import annotations

import asyncio

from esm.stores import Store
from esm.stores.mappings import StoredMapping

DOC = {"FunctionName": "orders", "BatchSize": 10, "Topics": ["t"]}


def mapping(uuid: str = "0b6f5c5e-0000-4000-8000-000000000001", state: str = "Creating") -> StoredMapping:
    return StoredMapping(uuid, dict(DOC), state, "USER_INITIATED", 1765000000.123456)


async def test_create_get_list_and_the_uuid_taken_once(store: Store) -> None:
    registry = store.mappings
    before = await registry.generation()
    created = await registry.create(mapping())
    assert created is not None and created.revision == 1
    assert await registry.create(mapping(state="Enabled")) is None  # the UUID is taken
    assert await registry.get(created.uuid) == created
    assert await registry.get("no-such-uuid") is None
    second = await registry.create(mapping("0b6f5c5e-0000-4000-8000-000000000000"))
    assert second is not None
    assert [m.uuid for m in await registry.list()] == [second.uuid, created.uuid]
    assert await registry.generation() == before + 2


async def test_replace_and_delete_are_compare_and_set_on_the_revision(store: Store) -> None:
    registry = store.mappings
    created = await registry.create(mapping())
    assert created is not None
    enabled = await registry.replace(
        StoredMapping(created.uuid, {**DOC, "BatchSize": 20}, "Enabled", "", 1765000001.5, created.revision)
    )
    assert enabled is not None and enabled.revision == 2
    assert (await registry.get(created.uuid)) == enabled
    # A writer that read revision 1 loses: nothing changes.
    stale = StoredMapping(created.uuid, DOC, "Disabled", "", 1.0, created.revision)
    assert await registry.replace(stale) is None
    assert not await registry.delete(created.uuid, created.revision)
    assert (await registry.get(created.uuid)) == enabled
    generation = await registry.generation()
    assert await registry.delete(created.uuid, enabled.revision)
    assert await registry.get(created.uuid) is None
    assert await registry.generation() == generation + 1
    assert await registry.replace(enabled) is None  # gone


async def test_of_two_racing_writers_one_wins(store: Store) -> None:
    registry = store.mappings
    created = await registry.create(mapping())
    assert created is not None
    writes = [
        StoredMapping(created.uuid, {**DOC, "BatchSize": size}, "Updating", "", 2.0, created.revision)
        for size in (30, 40)
    ]
    results = await asyncio.gather(*(registry.replace(write) for write in writes))
    assert sum(result is not None for result in results) == 1
