"""Scale-out on real hosts: daemons in network namespaces sharing a broker and a Redis store.

Each host (tests/integration/hosts.py) runs its own worker and daemon under its own host name;
the broker, Redis and kinesis-mock run in the root namespace. Checked: partitions split and
everything is delivered; ReservedConcurrentExecutions holds across hosts; a host killed while
holding permits blocks the survivor no longer than the permit lease; a 15 s network cut leaves
no permit nobody holds and loses nothing; a host joining moves only the partitions it takes
(cooperative rebalancing); a killed host's Kinesis shards are taken over within the lease.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from esm_processes import logged_at
from stream_services import KinesisMock

from esm.embedded.tansu import TansuBroker
from esm.embedded.topics import OutgoingRecord, committed_offsets, create_topic, produce
from esm.netutil import free_port

from .hosts import (
    SERVICE_ADDRESS,
    WORKER_ADDRESS,
    HostNetwork,
    HostProcesses,
    Invocation,
    NetnsUnavailable,
    RedisServer,
    invocations,
    peak_overlap,
    start_host,
    wait_for,
)
from .stream_harness import create_kinesis_stream, emulator_env, read_leases

SESSION_MS = 3000
PARTITIONS = 8
CAP = 2
PERMIT_LEASE = 5.0


@dataclass
class Services:
    network: HostNetwork
    bootstrap: str
    redis: RedisServer
    directory: Path


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    directory = tmp_path_factory.mktemp("hosts")
    try:
        network = HostNetwork(["a", "b"]).__enter__()
    except NetnsUnavailable as err:
        pytest.skip(str(err))
    try:
        broker = TansuBroker(host=SERVICE_ADDRESS, log_path=directory / "tansu.log")
        bootstrap = broker.start()
        redis_server = RedisServer(free_port(SERVICE_ADDRESS), directory / "redis.log")
        try:
            yield Services(network, bootstrap, redis_server, directory)
        finally:
            redis_server.stop()
            broker.stop()
    finally:
        network.close()


@dataclass
class Run:
    """One test's hosts, topic and files."""

    services: Services
    directory: Path
    topic: str
    store: str
    hosts: dict[str, HostProcesses]
    redis: redis.Redis | None = None

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "Store": self.store,
            "Metrics": {"Port": None},
            "ShutdownGracePeriodSeconds": 5,
            "PermitLeaseSeconds": PERMIT_LEASE,
            "Functions": [
                {
                    "FunctionName": "fn",
                    "Endpoints": [WORKER_ADDRESS],
                    "Timeout": 30,
                    "ReservedConcurrentExecutions": CAP,
                }
            ],
            **extra,
        }

    def kafka_config(self, client: str = "kafka-python") -> dict[str, Any]:
        mapping = {
            "UUID": "0f0f0f0f-0000-4000-8000-000000000001",
            "FunctionName": "fn",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [self.services.bootstrap]}},
            "Topics": [self.topic],
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"g-{self.topic}"},
            "StartingPosition": "TRIM_HORIZON",
            "KafkaClient": client,
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 0,
            "KafkaConsumerConfig": {
                "session.timeout.ms": SESSION_MS,
                "heartbeat.interval.ms": 500,
                "fetch.max.wait.ms": 20,
            },
        }
        return self.config(EventSourceMappings=[mapping])

    def start(self, name: str, config: dict[str, Any], env: dict[str, str] | None = None) -> HostProcesses:
        host = self.services.network.hosts[name]
        self.hosts[name] = start_host(host, self.directory, config, env)
        return self.hosts[name]

    def invocations(self) -> list[Invocation]:
        return invocations(self.directory)

    def values(self) -> set[str]:
        return {record[2] for invocation in self.invocations() for record in invocation.records}

    def permits(self) -> list[str]:
        """The live permits of the function in Redis (their tokens start with the holder)."""
        if self.redis is None:
            self.redis = redis.Redis(host=SERVICE_ADDRESS, port=self.services.redis.port)
        now_ms = _redis_now_ms(self.redis)
        prefix = self.store.rsplit("prefix=", 1)[1]
        live = self.redis.zrangebyscore(f"{prefix}permits:fn", f"({now_ms}", "+inf")
        return [member.decode() for member in live]


def _redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture
def run(services: Services, request: pytest.FixtureRequest) -> Iterator[Run]:
    directory = services.directory / f"{request.node.name[:50]}-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    topic = f"t-{uuid.uuid4().hex[:10]}"
    store = services.redis.url(f"{uuid.uuid4().hex[:8]}:")
    current = Run(services, directory, topic, store, {})
    try:
        yield current
    finally:
        for name in list(current.hosts):
            services.network.heal(name)
            current.hosts[name].kill()
        if current.redis is not None:
            current.redis.close()


class Producer:
    """Produces numbered records round-robin over the partitions, `rate` per second, until stopped."""

    def __init__(self, bootstrap: str, topic: str, rate: int) -> None:
        self._bootstrap, self._topic, self._rate = bootstrap, topic, rate
        self.sent: list[str] = []
        self.sent_at: dict[str, float] = {}  # value -> when it was handed to the producer (time.time)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Producer:
        self._thread.start()
        return self

    def _run(self) -> None:
        step = 0.1
        per_step = max(1, int(self._rate * step))
        while not self._stop.wait(step):
            values = [f"r{len(self.sent) + i}" for i in range(per_step)]
            now = time.time()
            self.sent_at.update((value, now) for value in values)
            produce(
                self._bootstrap,
                self._topic,
                [
                    OutgoingRecord(value=v.encode(), partition=(len(self.sent) + i) % PARTITIONS)
                    for i, v in enumerate(values)
                ],
            )
            self.sent += values

    def stop(self) -> set[str]:
        self._stop.set()
        self._thread.join(timeout=10)
        return set(self.sent)


def produce_numbered(run: Run, count: int) -> set[str]:
    values = [f"n{i}" for i in range(count)]
    produce(
        run.services.bootstrap,
        run.topic,
        [OutgoingRecord(value=v.encode(), partition=i % PARTITIONS) for i, v in enumerate(values)],
    )
    return set(values)


def test_two_hosts_split_the_partitions_hold_the_cap_and_survive_a_kill(run: Run) -> None:
    create_topic(run.services.bootstrap, run.topic, PARTITIONS)
    # 80 records/s in batches of 10 taking 0.2 s: the two permits are busy most of the time.
    producer = Producer(run.services.bootstrap, run.topic, rate=80).start()
    run.start("a", run.kafka_config())
    run.start("b", run.kafka_config())

    # Split: both hosts invoke, each for its own partitions.
    wait_for(lambda: {i.host for i in run.invocations()} == {"a", "b"}, 40, "both hosts invoke")
    # Kill host a while it holds every permit: the survivor must not wait for them past the lease.
    wait_for(
        lambda: [p.split(":")[0] for p in run.permits()] == ["a"] * CAP,
        30,
        "host a holds both permits",
        interval=0.002,
    )
    killed_at = time.time()
    run.hosts.pop("a").kill()

    wait_for(
        lambda: any(i.host == "b" and i.start > killed_at for i in run.invocations()),
        SESSION_MS / 1000 + 10,
        "the survivor invokes again",
    )
    sent = producer.stop()
    wait_for(lambda: run.values() >= sent, 60, "every record delivered")
    found = run.invocations()
    first_after_kill = min(i.start for i in found if i.host == "b" and i.start > killed_at)
    owners: dict[int, set[str]] = {}
    for invocation in found:
        for partition, _, _ in invocation.records:
            owners.setdefault(int(partition), set()).add(invocation.host)
    assert peak_overlap(found) <= CAP, "ReservedConcurrentExecutions held across hosts"
    assert first_after_kill - killed_at <= SESSION_MS / 1000 + 5
    assert any(hosts == {"a", "b"} for hosts in owners.values()), "a's partitions went to b"
    wait_for(
        lambda: (
            sum(committed_offsets(run.services.bootstrap, f"g-{run.topic}", run.topic).values()) == len(sent)
        ),
        30,
        "everything committed",
    )
    assert run.hosts["b"].stop() == 0, run.hosts["b"].daemon.stderr
    assert run.permits() == []


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_a_network_cut_leaves_no_permit_nobody_holds_and_loses_nothing(run: Run, client: str) -> None:
    if shutil.which("iptables") is None:
        pytest.skip("iptables is not installed: the network cut needs it (apt-get install iptables)")
    create_topic(run.services.bootstrap, run.topic, PARTITIONS)
    producer = Producer(run.services.bootstrap, run.topic, rate=60).start()
    run.start("a", run.kafka_config(client))
    run.start("b", run.kafka_config(client))
    wait_for(lambda: {i.host for i in run.invocations()} == {"a", "b"}, 40, "both hosts invoke")

    cut_at = time.time()
    run.services.network.cut("a")
    # Sample the store's permits through the cut and the heal (compared with what ran, below).
    samples: list[tuple[float, list[str]]] = []
    commits: list[dict[int, int]] = []
    healed_at = 0.0
    while time.time() < cut_at + 15 + 6:
        if not healed_at and time.time() >= cut_at + 15:
            run.services.network.heal("a")
            healed_at = time.time()
        samples.append((time.time(), run.permits()))
        if len(samples) % 10 == 0:
            commits.append(committed_offsets(run.services.bootstrap, f"g-{run.topic}", run.topic))
        time.sleep(0.05)
    sent = producer.stop()
    wait_for(lambda: run.values() >= sent, 60, "every record delivered")
    found = run.invocations()

    # The cut-off host fenced itself (esm's check for kafka-python, librdkafka's own session
    # check for confluent-kafka): it stopped its partitions and invoked nothing meanwhile.
    fenced = {"kafka-python": r"no answer from the Kafka group coordinator", "confluent-kafka": r"revoked"}
    run.hosts["a"].daemon.wait_for_line(fenced[client], timeout=5)
    assert not [i for i in found if i.host == "a" and cut_at + SESSION_MS / 1000 + 1 < i.start < healed_at]
    # The survivor took over within the session and the permit lease.
    assert any(
        i.host == "b" and i.start < cut_at + SESSION_MS / 1000 + PERMIT_LEASE + 2 and i.start > cut_at + 1
        for i in found
    )
    # Delivery steady again within 5 s of the heal: invocations every few hundred ms after it.
    after_heal = [i.start for i in found if healed_at + 5 <= i.start <= healed_at + 6]
    assert after_heal, "nothing invoked in the second after heal + 5 s"
    # The cut-off host's permits freed themselves within the lease (it could not release them).
    assert not [
        token
        for at, tokens in samples
        if cut_at + PERMIT_LEASE + 1 < at < healed_at
        for token in tokens
        if token.startswith("a:")
    ]
    # No permit nobody holds after the heal (an acquire arriving late): the store never held more
    # permits than invocations ran, for longer than a permit's acquire/release latency.
    ghost_since: float | None = None
    for at, tokens in samples:
        held = len(tokens)
        running = sum(1 for i in found if i.start - 0.3 <= at <= i.end + 0.3)
        if at > healed_at and held > running:
            ghost_since = ghost_since if ghost_since is not None else at
            assert at - ghost_since < 1.5, f"{held} permits but {running} invocations from {ghost_since:.1f}"
        else:
            ghost_since = None
    assert peak_overlap(found) <= CAP
    # Stale commits were refused: no partition's committed offset ever went back.
    for partition in range(PARTITIONS):
        seen = [c[partition] for c in commits if partition in c]
        assert seen == sorted(seen), f"partition {partition}'s commits went back: {seen}"


def test_a_host_joining_moves_only_the_partitions_it_takes(run: Run) -> None:
    create_topic(run.services.bootstrap, run.topic, PARTITIONS)
    producer = Producer(run.services.bootstrap, run.topic, rate=40).start()
    first = run.start("a", run.kafka_config())
    wait_for(
        lambda: len({r[0] for i in run.invocations() for r in i.records}) == PARTITIONS, 40, "a reads all"
    )
    run.start("b", run.kafka_config())
    wait_for(lambda: any(i.host == "b" for i in run.invocations()), 30, "b invokes")
    time.sleep(1)
    sent = producer.stop()
    wait_for(lambda: run.values() >= sent, 60, "every record delivered")

    moved = {int(r[0]) for i in run.invocations() if i.host == "b" for r in i.records}
    revoked_lines = [line for line in first.daemon.stderr.splitlines() if ": revoked " in line]
    revoked = {
        int(part.rsplit("-", 1)[1])
        for line in revoked_lines
        for part in line.split("revoked ", 1)[1].split(", ")
    }
    # Cooperative rebalancing: host a gave up exactly what b took; its other partitions flowed on.
    assert moved and len(moved) < PARTITIONS
    assert revoked == moved
    # ... also while the broker held a's JoinGroup: records of the kept partitions produced
    # after a's "rebalancing" line were invoked on a before its "revoked" line (the end of that
    # round), so a fetched them while it rejoined.
    rebalancing = first_logged(first.daemon.stderr, "consumer group rebalancing")
    revoked_at = first_logged(first.daemon.stderr, ": revoked ")
    kept = set(range(PARTITIONS)) - moved
    during = [
        value
        for i in run.invocations()
        if i.host == "a" and i.start < revoked_at
        for partition, _, value in i.records
        if int(partition) in kept and producer.sent_at[value] > rebalancing
    ]
    assert during, f"nothing produced after {rebalancing} reached a's kept partitions before {revoked_at}"


def first_logged(stderr: str, fragment: str) -> float:
    """When the daemon logged its first line containing `fragment`."""
    return logged_at(next(line for line in stderr.splitlines() if fragment in line))


def test_a_killed_host_s_kinesis_shards_are_taken_over_within_the_lease(
    run: Run, tmp_path_factory: pytest.TempPathFactory
) -> None:
    kinesis = KinesisMock(tmp_path_factory.mktemp("kinesis") / "kinesis-mock.log").start()
    try:
        stream = create_kinesis_stream(kinesis, shard_count=4)
        lease = 3.0
        mapping = {
            "UUID": "0f0f0f0f-0000-4000-8000-000000000002",
            "FunctionName": "fn",
            "EventSourceArn": stream.arn,
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 0,
        }
        config = run.config(EventSourceMappings=[mapping], LeaseDurationSeconds=lease)
        env = {
            **emulator_env(kinesis),
            "AWS_ENDPOINT_URL_KINESIS": f"http://{SERVICE_ADDRESS}:{kinesis.port}",
        }
        run.start("a", config, env)
        run.start("b", config, env)
        shards = set(stream.shard_ids())
        stop = threading.Event()

        def put() -> None:
            n = 0
            while not stop.wait(0.05):
                stream.client.put_records(
                    StreamName=stream.name,
                    Records=[
                        {"Data": f"k{n + i}".encode(), "PartitionKey": f"key-{n + i}"} for i in range(8)
                    ],
                )
                n += 8

        putter = threading.Thread(target=put, daemon=True)
        putter.start()
        try:
            wait_for(
                lambda: (
                    {r[0] for i in run.invocations() if i.host == "a" for r in i.records}
                    and {r[0] for i in run.invocations() if i.host == "b" for r in i.records}
                ),
                40,
                "both hosts process shards",
            )
            a_shards = {r[0] for i in run.invocations() if i.host == "a" for r in i.records}
            killed_at = time.time()
            run.hosts.pop("a").kill()

            def b_holds_a_s_leases() -> bool:
                leases = read_leases(run.store, mapping["UUID"], stream.arn)
                return all((leases[shard].owner or "").startswith("b:") for shard in a_shards)

            # Taken over: b holds the lease of every shard a had (read from the lease table).
            taken = wait_for(b_holds_a_s_leases, lease + 2 + 3, "b holds a's leases", interval=0.05)
            wait_for(
                lambda: (
                    a_shards
                    <= {
                        r[0]
                        for i in run.invocations()
                        if i.host == "b" and i.start > killed_at
                        for r in i.records
                    }
                ),
                10,
                "b processes a's shards",
            )
        finally:
            stop.set()
            putter.join(timeout=10)
        assert taken - killed_at <= lease + 2, (
            f"a's shards taken over {taken - killed_at:.1f}s after the kill"
        )
        assert {r[0] for i in run.invocations() for r in i.records} == shards
    finally:
        kinesis.stop()
