"""Failover and rebalancing across daemons: takeover time, stall per rebalance, duplicates.

    .venv/bin/python benchmarks/hosts_failover.py               # 3 runs of each scenario and mode
    .venv/bin/python benchmarks/hosts_failover.py --runs 1 --json out.json
    .venv/bin/python benchmarks/hosts_failover.py --client confluent-kafka

Two daemons (each with its own worker) share one Kafka mapping on an 8-partition topic (the
embedded broker, Tansu) and a Redis store (the local Redis, under a fresh prefix), with
`ReservedConcurrentExecutions: 4`. A producer writes 200 records/s round-robin; each
invocation takes 50 ms. Two scenarios, each in two modes:

- join: daemon A runs alone, then B starts. "stall kept" is the longest gap between
  invocations of a partition that A keeps (no owner change), after B started: with eager
  rebalancing every partition stops; "hand-over" is the longest gap of a partition that moved.
- kill: A and B run, then A (daemon and worker) is killed with SIGKILL, at a moment when A holds
  every permit if one comes within 15 s. "takeover" is the time from the kill to B's first
  invocation of the last of A's partitions; "blocked" (only when A held every permit) the time
  from the kill to B's first invocation of anything: how long A's permits outlived it.
- duplicates: (partition, offset) pairs delivered more than once, over the whole run.

Modes: "before" = eager rebalancing (`partition.assignment.strategy: range`), no commit on
revoke (ESM_KAFKA_COMMIT_ON_REVOKE=false) and a permit lease of Timeout + 10 s (40 s, what a
permit lasted before it was a renewed lease); "after" = the defaults (cooperative-sticky, commit
on revoke, PermitLeaseSeconds 5). Figures are medians over the runs; session.timeout.ms is 3000.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
from kafka_bench.engine import REPO_ROOT, child_environment, esm_command, start_worker

from esm.demo.children import ChildProcess
from esm.embedded.tansu import TansuBroker
from esm.embedded.topics import OutgoingRecord, create_topic, produce

PARTITIONS = 8
RATE = 200
SESSION_MS = 3000
REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Mode:
    name: str
    strategy: str
    commit_on_revoke: bool
    permit_lease: float


MODES = [Mode("before", "range", False, 40.0), Mode("after", "cooperative-sticky", True, 5.0)]


@dataclass
class Result:
    scenario: str
    mode: str
    stall_kept_s: float | None = None
    hand_over_s: float | None = None
    takeover_s: float | None = None
    # Kill while A held every permit: from the kill to B's first invocation of any partition.
    blocked_s: float | None = None
    duplicates: int = 0


@dataclass
class Invocation:
    host: str
    start: float
    records: list[tuple[int, int]]


class Producer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        per_step = RATE // 10
        while not self._stop.wait(0.1):
            records = [
                OutgoingRecord(value=f"v{self.sent + i}".encode(), partition=(self.sent + i) % PARTITIONS)
                for i in range(per_step)
            ]
            produce(self._bootstrap, self._topic, records)
            self.sent += per_step

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.sent


class Host:
    """One daemon and its worker (a "host": its own processes, its own holder id)."""

    def __init__(
        self, name: str, directory: Path, bootstrap: str, topic: str, store: str, mode: Mode, client: str
    ) -> None:
        workdir = directory / name
        workdir.mkdir()
        env = {"ESM_BENCH_HOST": name, "ESM_BENCH_INVOCATION_DIR": str(directory)}
        self.worker, endpoint = start_worker("benchmarks.handlers.invocation_log:handler", workdir, 4, env)
        config = {
            "Store": store,
            "Metrics": {"Port": None},
            "PermitLeaseSeconds": mode.permit_lease,
            "ShutdownGracePeriodSeconds": 5,
            "Functions": [
                {
                    "FunctionName": "fn",
                    "Endpoints": [endpoint],
                    "Timeout": 30,
                    "ReservedConcurrentExecutions": 4,
                }
            ],
            "EventSourceMappings": [
                {
                    "UUID": "0f0f0f0f-0000-4000-8000-00000000b001",
                    "FunctionName": "fn",
                    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
                    "Topics": [topic],
                    "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"g-{topic}"},
                    "StartingPosition": "TRIM_HORIZON",
                    "KafkaClient": client,
                    "BatchSize": 10,
                    "MaximumBatchingWindowInSeconds": 0,
                    "KafkaConsumerConfig": {
                        "session.timeout.ms": SESSION_MS,
                        "heartbeat.interval.ms": 500,
                        "fetch.max.wait.ms": 20,
                        "partition.assignment.strategy": mode.strategy,
                    },
                }
            ],
        }
        path = workdir / "esm.json"
        path.write_text(json.dumps(config))
        daemon_env = child_environment({"ESM_KAFKA_COMMIT_ON_REVOKE": str(mode.commit_on_revoke).lower()})
        self.daemon = ChildProcess(
            f"esm run ({name})",
            esm_command("run", "-c", str(path)),
            workdir / "daemon.log",
            cwd=REPO_ROOT,
            env=daemon_env,
        )

    def kill(self) -> None:
        for process in (self.daemon, self.worker):
            os.kill(process.pid, 9)

    def stop(self) -> None:
        self.daemon.stop()
        self.worker.stop()


def invocations(directory: Path) -> list[Invocation]:
    found = []
    for path in directory.glob("invocations-*.jsonl"):
        for line in path.read_text().split("\n")[:-1]:
            entry = json.loads(line)
            found.append(Invocation(entry["host"], entry["start"], [(p, o) for p, o in entry["records"]]))
    return sorted(found, key=lambda invocation: invocation.start)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting until {what}")
        time.sleep(0.1)


def partitions_of(found: list[Invocation], host: str, after: float = 0.0) -> set[int]:
    return {p for i in found if i.host == host and i.start > after for p, _ in i.records}


def longest_gap(found: list[Invocation], partition: int, since: float) -> float:
    """The longest wait between invocations of `partition` from `since` (its last one before counts)."""
    starts = [i.start for i in found if any(p == partition for p, _ in i.records)]
    before = [s for s in starts if s <= since][-1:]
    later = before + [s for s in starts if s > since]
    return max((b - a for a, b in itertools.pairwise(later)), default=0.0)


def duplicates(found: list[Invocation]) -> int:
    counts = Counter(record for invocation in found for record in invocation.records)
    return sum(count - 1 for count in counts.values() if count > 1)


def drained(directory: Path, sent: int) -> Callable[[], bool]:
    return lambda: len({r for i in invocations(directory) for r in i.records}) >= sent


def new_scenario(broker: str) -> tuple[str, str, Producer]:
    """A fresh topic, a fresh key prefix in the store, and a producer already sending to it."""
    topic = f"hf-{uuid.uuid4().hex[:10]}"
    create_topic(broker, topic, PARTITIONS)
    return topic, f"{REDIS}?prefix=hf-{uuid.uuid4().hex[:8]}:", Producer(broker, topic)


def run_join(broker: str, mode: Mode, directory: Path, client: str) -> Result:
    topic, store, producer = new_scenario(broker)
    a = Host("a", directory, broker, topic, store, mode, client)
    hosts = [a]
    try:
        wait_for(lambda: len(partitions_of(invocations(directory), "a")) == PARTITIONS, 60, "a reads all")
        time.sleep(3)
        joined = time.time()
        hosts.append(Host("b", directory, broker, topic, store, mode, client))
        wait_for(lambda: partitions_of(invocations(directory), "b"), 60, "b invokes")
        time.sleep(5)
        sent = producer.stop()
        wait_for(drained(directory, sent), 60, "everything delivered")
    finally:
        producer.stop()
        for host in hosts:
            host.stop()
    found = invocations(directory)
    moved = partitions_of(found, "b")
    kept = set(range(PARTITIONS)) - moved
    return Result(
        "join",
        mode.name,
        stall_kept_s=round(max(longest_gap(found, p, joined) for p in kept), 2) if kept else None,
        hand_over_s=round(max(longest_gap(found, p, joined) for p in moved), 2),
        duplicates=duplicates(found),
    )


def run_kill(broker: str, mode: Mode, directory: Path, client: str) -> Result:
    topic, store, producer = new_scenario(broker)
    a = Host("a", directory, broker, topic, store, mode, client)
    b = Host("b", directory, broker, topic, store, mode, client)
    try:
        wait_for(
            lambda: partitions_of(invocations(directory), "a") and partitions_of(invocations(directory), "b"),
            60,
            "both invoke",
        )
        time.sleep(3)
        owned_by_a = partitions_of(invocations(directory), "a", after=time.time() - 1.5)
        held_all = wait_holding_every_permit(store, f":{a.daemon.pid}/", 15.0)
        killed = time.time()
        a.kill()
        wait_for(
            lambda: owned_by_a <= partitions_of(invocations(directory), "b", after=killed), 90, "b takes over"
        )
        found = invocations(directory)
        takeover = max(
            min(
                i.start
                for i in found
                if i.host == "b" and i.start > killed and any(p == q for q, _ in i.records)
            )
            for p in owned_by_a
        )
        first = min(i.start for i in found if i.host == "b" and i.start > killed)
        sent = producer.stop()
        wait_for(drained(directory, sent), 60, "everything delivered")
    finally:
        producer.stop()
        b.stop()
        a.worker.stop()
        a.daemon.stop()
    return Result(
        "kill",
        mode.name,
        takeover_s=round(takeover - killed, 2),
        blocked_s=round(first - killed, 2) if held_all else None,
        duplicates=duplicates(invocations(directory)),
    )


def wait_holding_every_permit(store: str, holder_mark: str, timeout: float) -> bool:
    """Waits (up to `timeout`) for a moment when every live permit is the holder's; whether it came."""
    prefix = store.split("prefix=", 1)[1]
    client = redis.Redis.from_url(REDIS)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            seconds, micros = client.time()
            now_ms = int(seconds) * 1000 + int(micros) // 1000
            live = [m.decode() for m in client.zrangebyscore(f"{prefix}permits:fn", f"({now_ms}", "+inf")]
            if len(live) == 4 and all(holder_mark in token for token in live):
                return True
            time.sleep(0.005)
        return False
    finally:
        client.close()


def median(values: list[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--client", choices=["kafka-python", "confluent-kafka"], default="kafka-python")
    parser.add_argument("--scenarios", default="join,kill", help="a subset of join,kill")
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="esm-hosts-failover-") as tmp, TansuBroker() as broker:
        bootstrap = broker.bootstrap
        for run in range(args.runs):
            chosen = args.scenarios.split(",")
            for scenario in [run for name, run in (("join", run_join), ("kill", run_kill)) if name in chosen]:
                for mode in MODES:
                    directory = Path(tmp) / f"{scenario.__name__}-{mode.name}-{run}"
                    directory.mkdir()
                    result = scenario(bootstrap, mode, directory, args.client)
                    print(f"run {run + 1}: {asdict(result)}", file=sys.stderr, flush=True)
                    results.append(result)
    rows = []
    header = ("stall kept s", "hand-over s", "takeover s", "blocked s", "duplicates")
    print(f"{'scenario':<8} {'mode':<7} " + " ".join(f"{title:>12}" for title in header))
    for scenario in args.scenarios.split(","):
        for mode in MODES:
            mine = [r for r in results if r.scenario == scenario and r.mode == mode.name]
            row = {
                "scenario": scenario,
                "mode": mode.name,
                "stall_kept_s": median([r.stall_kept_s for r in mine]),
                "hand_over_s": median([r.hand_over_s for r in mine]),
                "takeover_s": median([r.takeover_s for r in mine]),
                "blocked_s": median([r.blocked_s for r in mine]),
                "duplicates": median([r.duplicates for r in mine]),
            }
            rows.append(row)
            cells = [
                row[k] if row[k] is not None else "-"
                for k in ("stall_kept_s", "hand_over_s", "takeover_s", "blocked_s", "duplicates")
            ]
            print(f"{scenario:<8} {mode.name:<7} " + " ".join(f"{cell!s:>12}" for cell in cells))
    if args.json:
        args.json.write_text(json.dumps({"runs": [asdict(r) for r in results], "medians": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
