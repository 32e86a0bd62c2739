"""deploy/ built and run: the images build from deploy/Dockerfile on a Debian base, the compose file
runs the bundled broker, Redis, a worker, the daemon and Prometheus with host networking only, and
records produced from outside reach the function, are committed, and show on the status page and
in Prometheus."""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration.harness import wait_until
from kafka.errors import KafkaError

from esm.embedded.topics import KafkaHelperError, OutgoingRecord, committed_offsets, create_topic, produce
from esm.netutil import free_port

from .docker_engine import DockerEngine, base_image, docker_engine
from .prometheus_server import PrometheusApi
from .wheelhouse import REPO, served, wheelhouse

log = logging.getLogger(__name__)

COMPOSE_FILE = REPO / "deploy" / "compose" / "docker-compose.yml"
ESM_CONFIG = REPO / "deploy" / "compose" / "esm" / "esm.yaml"
PROMETHEUS_CONFIG = REPO / "deploy" / "compose" / "prometheus" / "prometheus.yml"
SERVICES = ("broker", "redis", "worker", "daemon", "prometheus")
TOPIC = "orders"
GROUP = "orders-esm"
ORDERS = 200
# What a build may take on a fresh machine (the base image and wheels are made once, then cached).
BUILD_SECONDS = 600


@dataclass
class Ports:
    kafka: int
    redis: int
    worker: int
    metrics: int
    prometheus: int


@dataclass
class Compose:
    engine: DockerEngine
    project: str
    env: dict[str, str]
    ports: Ports

    def run(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            ["docker-compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-4000:]}\n{self.logs()}"
            )
        return result.stdout

    def logs(self) -> str:
        result = subprocess.run(
            [
                "docker-compose",
                "-f",
                str(COMPOSE_FILE),
                "-p",
                self.project,
                "logs",
                "--no-color",
                "--tail",
                "30",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout[-6000:]


def configs(directory: Path, ports: Ports) -> tuple[Path, Path]:
    """deploy/compose's esm.yaml and prometheus.yml with this run's ports, readable by the
    containers' users."""
    esm_dir, prometheus_dir = directory / "esm", directory / "prometheus"
    replacements = {
        "127.0.0.1:9092": f"127.0.0.1:{ports.kafka}",
        "127.0.0.1:6379": f"127.0.0.1:{ports.redis}",
        "127.0.0.1:50051": f"127.0.0.1:{ports.worker}",
        "Port: 9108": f"Port: {ports.metrics}",
        "127.0.0.1:9108": f"127.0.0.1:{ports.metrics}",
        "scrape_interval: 15s": "scrape_interval: 1s",
        "evaluation_interval: 15s": "evaluation_interval: 1s",
    }
    for source, target_dir in ((ESM_CONFIG, esm_dir), (PROMETHEUS_CONFIG, prometheus_dir)):
        text = source.read_text()
        for old, new in replacements.items():
            text = text.replace(old, new)
        target_dir.mkdir(parents=True)
        target_dir.chmod(0o755)
        (target_dir / source.name).write_text(text)
        (target_dir / source.name).chmod(0o644)
    directory.chmod(0o755)
    return esm_dir, prometheus_dir


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    with docker_engine() as started:
        yield started


@pytest.fixture
def compose(engine: DockerEngine, tmp_path: Path) -> Iterator[Compose]:
    started = time.monotonic()
    base = base_image(engine)
    log.info("deploy: base image %s ready after %.0fs", base, time.monotonic() - started)
    wheels_dir = wheelhouse(engine, base)
    log.info("deploy: wheelhouse ready after %.0fs", time.monotonic() - started)
    with served(wheels_dir) as wheels:
        ports = Ports(free_port(), free_port(), free_port(), free_port(), free_port())
        esm_dir, prometheus_dir = configs(tmp_path / "config", ports)
        env = {
            **engine.env,
            "BASE_IMAGE": base,
            "PIP_FIND_LINKS": wheels,
            "PIP_NO_INDEX": "1",
            "ESM_TAG": "ci",
            "KAFKA_PORT": str(ports.kafka),
            "REDIS_PORT": str(ports.redis),
            "WORKER_PORT": str(ports.worker),
            "PROMETHEUS_PORT": str(ports.prometheus),
            "ESM_CONFIG_DIR": str(esm_dir),
            "PROMETHEUS_CONFIG_DIR": str(prometheus_dir),
        }
        running = Compose(engine, f"esmdeploy{uuid.uuid4().hex[:8]}", env, ports)
        running.run("build", timeout=BUILD_SECONDS)
        log.info("deploy: images built after %.0fs", time.monotonic() - started)
    try:
        yield running
    finally:
        running.run("down", "--timeout", "1", "--volumes", "--remove-orphans")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(f"{name}{{"))


def create_orders_topic(bootstrap: str) -> None:
    """The broker container was just started: retried until it answers."""
    deadline = time.monotonic() + 60
    while True:
        try:
            create_topic(bootstrap, TOPIC, 2)
            return
        except (KafkaError, KafkaHelperError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.timeout(900)
def test_records_flow_through_the_compose_deployment(compose: Compose) -> None:
    ports = compose.ports
    bootstrap = f"127.0.0.1:{ports.kafka}"
    compose.run("up", "--detach", "broker", "redis")
    create_orders_topic(bootstrap)
    compose.run("up", "--detach")
    orders = [
        OutgoingRecord(value=json.dumps({"amount": i}).encode(), partition=i % 2) for i in range(ORDERS)
    ]
    produce(bootstrap, TOPIC, orders)
    committed: dict[int, int] = {}

    def all_committed() -> bool:
        committed.update(committed_offsets(bootstrap, GROUP, TOPIC))
        return sum(committed.values()) == ORDERS

    wait_until(
        all_committed, timeout=120, message=lambda: f"{ORDERS} committed, have {committed}\n{compose.logs()}"
    )
    metrics_url = f"http://127.0.0.1:{ports.metrics}"
    assert metric(f"{metrics_url}/metrics", "esm_records_delivered_total") == ORDERS
    assert metric(f"{metrics_url}/metrics", "esm_invocations_total") >= 1
    # The containerized daemon's status page: every partition caught up, its last batch a success
    # (as its owner reports it: reports are published every second).
    status: dict[str, Any] = {}

    def caught_up() -> bool:
        status.update(get_json(f"{metrics_url}/status"))
        shown = [
            (p["partition"], p["lag"], p["last_processing_result"])
            for p in status["mappings"][0]["partitions"]
        ]
        return shown == [(0, 0, "OK"), (1, 0, "OK")]

    wait_until(caught_up, timeout=30, message=lambda: f"{json.dumps(status, indent=1)}\n{compose.logs()}")
    [mapping] = status["mappings"]
    assert status["unreachable"] == [] and mapping["function"] == "orders" and mapping["state"] == "Enabled"
    # Prometheus in the deployment scrapes the daemon and has the alerting rules loaded.
    prometheus = PrometheusApi(ports.prometheus)
    scraped: list[dict[str, Any]] = []

    def prometheus_saw_them() -> bool:
        scraped[:] = prometheus.query("sum(esm_records_delivered_total)") if prometheus.ready() else []
        return bool(scraped) and float(scraped[0]["value"][1]) == ORDERS

    wait_until(prometheus_saw_them, timeout=60, message=lambda: f"prometheus: {scraped}\n{compose.logs()}")
    rules: list[dict[str, Any]] = []

    def rules_evaluated() -> bool:
        rules[:] = prometheus.rules()
        return bool(rules)

    wait_until(rules_evaluated, timeout=30, message=lambda: f"rules evaluated\n{compose.logs()}")
    assert {rule["health"] for rule in rules} == {"ok"} and "EsmShardWithoutOwner" in {
        r["name"] for r in rules
    }
    # Host networking only: every container on the host's network, and no network created.
    containers = compose.run("ps", "--quiet").split()
    assert len(containers) == len(SERVICES)
    modes = compose.engine.docker(
        "inspect", "--format", "{{.HostConfig.NetworkMode}}", *containers
    ).stdout.split()
    assert modes == ["host"] * len(SERVICES)
    networks = compose.engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [name for name in networks if name.startswith(compose.project)]
