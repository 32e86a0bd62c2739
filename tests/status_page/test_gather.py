"""Gathering the status page's snapshot against real services: the owners' reports in a real store
merged with Kafka's offsets, and what happens when the store or the broker does not answer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from esm.config import EsmConfig, parse_config
from esm.embedded.topics import OutgoingRecord, produce
from esm.netutil import free_port
from esm.status_page.gather import StatusGatherer, describe_source, store_name
from esm.stores import Store, open_store
from esm.stores.mappings import StoredMapping

KINESIS_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"


def config(store: str, bootstrap: str, topic: str, with_stream: bool = False) -> EsmConfig:
    mappings: list[dict[str, Any]] = [
        {
            "UUID": str(uuid.uuid4()),
            "FunctionName": "fn",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
            "Topics": [topic],
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"g-{topic}"},
            "StartingPosition": "TRIM_HORIZON",
        }
    ]
    if with_stream:
        mappings.append(
            {"FunctionName": "fn", "EventSourceArn": KINESIS_ARN, "StartingPosition": "TRIM_HORIZON"}
        )
    data = {"Store": store, "Functions": [{"FunctionName": "fn", "Endpoints": ["127.0.0.1:9"]}]}
    return parse_config({**data, "EventSourceMappings": mappings}).config


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (in the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def report(owner: str) -> dict[str, Any]:
    return {
        "owner": owner,
        "state": "PROCESSING",
        "in_flight": {"first": 3, "last": 4, "records": 2},
        "retries": 1,
        "last_error": "boom",
        "last_processing_result": "PROBLEM: Function call failed",
    }


async def publish(store_url: str, mapping: str, reports: dict[str, dict[str, Any]]) -> None:
    store = open_store(store_url)
    try:
        await store.status.publish(mapping, reports, 60.0, time.time())
    finally:
        await store.close()


def test_partitions_show_the_owners_reports_and_kafkas_offsets(
    kafka_broker: str, new_topic: Callable[..., str], sqlite_store_url: str
) -> None:
    topic = new_topic(partitions=2)
    produce(kafka_broker, topic, [OutgoingRecord(value=b"x", partition=0) for _ in range(5)])
    cfg = config(sqlite_store_url, kafka_broker, topic)
    mapping = cfg.EventSourceMappings[0]
    asyncio.run(publish(sqlite_store_url, mapping.uuid, {"0": report("host-a:1")}))
    gatherer = StatusGatherer(cfg)

    async def twice() -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            return await gatherer.gather(5.0), await gatherer.gather(5.0)
        finally:
            await gatherer.close()

    first, second = asyncio.run(twice())
    assert first["unreachable"] == [] and first["mappings"] == second["mappings"]
    [entry] = first["mappings"]
    assert entry["source"] == f"Kafka topic {topic} on {kafka_broker}, group g-{topic}"
    assert (entry["uuid"], entry["function"], entry["state"]) == (mapping.uuid, "fn", "Enabled")
    p0, p1 = entry["partitions"]
    assert (p0["owner"], p0["shard_state"], p0["lag"], p0["retries"]) == ("host-a:1", "PROCESSING", 5, 1)
    assert p0["in_flight"] == {"first": 3, "last": 4, "records": 2} and p0["last_error"] == "boom"
    assert p0["last_processing_result"] == "PROBLEM: Function call failed"
    assert (p1["owner"], p1["lag"], p1["last_processing_result"]) == (None, 0, "No records processed")


def test_a_silent_store_and_a_missing_broker_are_named_and_do_not_hold_the_answer(silent_server: int) -> None:
    dead_broker = f"127.0.0.1:{free_port()}"
    cfg = config(f"redis://:secret@127.0.0.1:{silent_server}/0", dead_broker, "orders", with_stream=True)
    gatherer = StatusGatherer(cfg)

    async def once() -> dict[str, Any]:
        try:
            return await gatherer.gather(1.0)
        finally:
            await gatherer.close()

    # The store never answers its PING (Redis's own timeout is 5 s): the answer comes without it.
    snapshot = asyncio.run(once())
    kafka, stream = snapshot["mappings"]
    assert snapshot["unreachable"][0] == (
        f"store redis://:***@127.0.0.1:{silent_server}/0: no answer yet (still connecting)"
    )
    assert "secret" not in str(snapshot)
    assert kafka["error"] and not kafka.get("partitions")
    expected = f"mapping {kafka['uuid']} (Kafka topic orders on {dead_broker}, group g-orders): "
    assert [problem for problem in snapshot["unreachable"] if problem.startswith(expected)]
    assert stream["error"] == "the lease table is unavailable (no store)" and stream["source"] == KINESIS_ARN


def test_a_store_that_answers_late_is_used_by_a_later_refresh(
    kafka_broker: str, new_topic: Callable[..., str], sqlite_store_url: str
) -> None:
    topic = new_topic(partitions=1)
    cfg = config(sqlite_store_url, kafka_broker, topic, with_stream=True)
    asyncio.run(publish(sqlite_store_url, cfg.EventSourceMappings[0].uuid, {"0": report("host-b:2")}))
    answer = threading.Event()
    opened: list[str] = []

    def slow_open(url: str) -> Store:
        opened.append(url)
        answer.wait(30)
        return open_store(url)

    gatherer = StatusGatherer(cfg, opener=slow_open)

    async def before_and_after() -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            before = await gatherer.gather(4.0)
            answer.set()
            await asyncio.sleep(0.2)
            return before, await gatherer.gather(5.0)
        finally:
            await gatherer.close()

    before, after = asyncio.run(before_and_after())
    assert before["unreachable"][0] == f"store {sqlite_store_url}: no answer yet (still connecting)"
    # Kafka still answers: the partition and its offsets show, without the owner's report.
    [partition] = before["mappings"][0]["partitions"]
    assert (partition["partition"], partition["owner"], partition["lag"]) == (0, None, 0)
    assert after["unreachable"] == []
    assert after["mappings"][0]["partitions"][0]["owner"] == "host-b:2"
    assert after["mappings"][1]["shards"] == [] and "error" not in after["mappings"][1]
    assert opened == [sqlite_store_url]


def test_mappings_created_through_the_control_api_show_with_their_state(
    kafka_broker: str, new_topic: Callable[..., str], sqlite_store_url: str
) -> None:
    topic = new_topic(partitions=1)
    cfg = config(sqlite_store_url, kafka_broker, topic)
    created = {
        "UUID": str(uuid.uuid4()),
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka_broker]}},
        "Topics": [topic],
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "api-group"},
        "StartingPosition": "TRIM_HORIZON",
    }

    async def create_then_gather() -> dict[str, Any]:
        store = open_store(sqlite_store_url)
        try:
            await store.mappings.create(
                StoredMapping(created["UUID"], created, "Disabling", "User action", 1.0)
            )
        finally:
            await store.close()
        gatherer = StatusGatherer(cfg)
        try:
            return await gatherer.gather(5.0)
        finally:
            await gatherer.close()

    snapshot = asyncio.run(create_then_gather())
    assert [(m["uuid"], m["state"]) for m in snapshot["mappings"]] == [
        (cfg.EventSourceMappings[0].uuid, "Enabled"),
        (created["UUID"], "Disabling"),
    ]
    assert snapshot["mappings"][1]["source"] == f"Kafka topic {topic} on {kafka_broker}, group api-group"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0?prefix=x", "redis://:***@h:6379/0?prefix=x"),
        ("redis://user:pw@h:6379/2", "redis://user:***@h:6379/2"),
        ("sqlite:///esm-state.db", "sqlite:///esm-state.db"),
    ],
)
def test_store_name_leaves_the_password_out(url: str, shown: str) -> None:
    assert store_name(url) == shown


def test_describe_source_of_a_stream_mapping_is_its_arn() -> None:
    cfg = config("sqlite:///x.db", "127.0.0.1:9092", "orders", with_stream=True)
    assert describe_source(cfg.EventSourceMappings[1]) == KINESIS_ARN
