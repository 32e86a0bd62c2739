"""deploy/grafana and deploy/prometheus against a real daemon: every metric name the dashboard and
the alerting rules use is one that `esm run`'s /metrics serves, and a real Prometheus scraping
that daemon loads the rules and answers every dashboard query."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.harness import Worker, mapping, wait_until, write_config
from integration.stream_harness import create_kinesis_stream, emulator_env, kinesis_mapping, stream_daemon
from prometheus_client.parser import text_string_to_metric_families
from stream_services import KinesisMock

from esm.embedded.topics import OutgoingRecord, create_topic, produce

from .prometheus_server import Prometheus
from .test_prometheus_rules import RULES

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "esm-dashboard.json"
METRIC_NAME = re.compile(r"\besm_[a-z0-9_]+")
# The sample names each family type serves (prometheus-client's text format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
# Grafana's variables, as a person's first view of the dashboard sets them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$mapping": ".*", "$function": ".*"}
RECORDS = 20


def dashboard_queries() -> list[str]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def rule_queries() -> list[str]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def served_names(metrics_text: str) -> set[str]:
    return {
        family.name + suffix
        for family in text_string_to_metric_families(metrics_text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def for_prometheus(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@dataclass
class Running:
    metrics_url: str
    metrics_text: str
    prometheus: Prometheus


@pytest.fixture(scope="module")
def running(
    kafka_broker: str, kinesis_mock: KinesisMock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """A daemon with a Kafka and a Kinesis mapping that has delivered records, and a Prometheus
    scraping it with the alerting rules loaded."""
    tmp = tmp_path_factory.mktemp("dashboard")
    topic = f"dashboard-{uuid.uuid4().hex[:10]}"
    create_topic(kafka_broker, topic, 2)
    produce(kafka_broker, topic, [OutgoingRecord(value=b'{"amount": 1}') for _ in range(RECORDS)])
    stream = create_kinesis_stream(kinesis_mock, shard_count=1)
    worker = Worker("tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(tmp / "e.jsonl")})
    worker.wait_serving()
    config = write_config(
        tmp / "esm.json",
        [{"FunctionName": "fn", "Endpoints": [worker.address]}],
        [mapping(kafka_broker, topic, f"g-{topic}"), kinesis_mapping(stream, str(uuid.uuid4()))],
        LeaseDurationSeconds=3,
    )
    metrics_port = json.loads(config.read_text())["Metrics"]["Port"]
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    engine = stream_daemon(config, emulator_env(kinesis_mock))
    prometheus: Prometheus | None = None
    try:
        text: list[str] = [""]

        def delivered() -> bool:
            try:
                with urllib.request.urlopen(metrics_url, timeout=5) as answer:
                    text[0] = answer.read().decode()
            except OSError:
                return False
            return _total(text[0], "esm_records_delivered_total") >= RECORDS

        wait_until(delivered, timeout=60, message=lambda: f"{RECORDS} delivered\n{engine.stderr[-3000:]}")
        prometheus = Prometheus(tmp / "prometheus", [f"127.0.0.1:{metrics_port}"], [RULES]).wait_ready()
        yield Running(metrics_url, text[0], prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        engine.stop()
        worker.stop()


def _total(metrics_text: str, sample_name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == sample_name
    )


def test_every_metric_the_dashboard_and_rules_use_is_served(running: Running) -> None:
    served = served_names(running.metrics_text)
    used = {name for expr in dashboard_queries() + rule_queries() for name in METRIC_NAME.findall(expr)}
    assert used, "no esm metric found in the dashboard or the rules"
    assert used - served == set(), f"used but not served by {running.metrics_url}"


def test_the_dashboard_shows_what_an_operator_needs() -> None:
    used = {name for expr in dashboard_queries() for name in METRIC_NAME.findall(expr)}
    assert {
        "esm_iterator_age_seconds",
        "esm_offset_lag",
        "esm_millis_behind_latest",
        "esm_invocations_total",
        "esm_throttles_total",
        "esm_concurrent_invocations",
        "esm_batch_size_records_bucket",
        "esm_records_to_destination_total",
        "esm_destination_failures_total",
        "esm_batch_retries_total",
        "esm_batch_bisects_total",
        "esm_leases_taken_total",
        "esm_leases_lost_total",
        "esm_trimmed_checkpoints_total",
        "esm_shards_unowned",
    } <= used


def test_prometheus_loads_the_rules_and_answers_every_dashboard_query(running: Running) -> None:
    prometheus = running.prometheus
    rules: list[dict[str, Any]] = []

    def rules_evaluated() -> bool:
        rules[:] = prometheus.rules()
        return bool(rules)

    wait_until(rules_evaluated, timeout=30, message=lambda: f"rules evaluated\n{prometheus.log()}")
    assert {rule["health"] for rule in rules} == {"ok"} and len(rules) == len(rule_queries())
    # rate() needs two scrapes in its window.
    delivered = "sum(esm_records_delivered_total)"
    wait_until(
        lambda: bool(prometheus.query(f"rate({delivered[4:-1]}[1m])")), timeout=30, message="two scrapes"
    )
    assert float(prometheus.query(delivered)[0]["value"][1]) >= RECORDS
    answered = {expr: prometheus.query(for_prometheus(expr)) for expr in dashboard_queries()}
    with_data = [expr for expr, result in answered.items() if result]
    # Every query parses and runs; those over what this run did (records, invocations, batches,
    # ownership, leases) have data.
    for needle in ("esm_records_polled_total", "esm_invocations_total", "esm_batch_size_records_bucket"):
        assert any(needle in expr for expr in with_data), f"no data for {needle}: {answered}"
    assert any("esm_partitions_owned" in expr for expr in with_data)
    assert any("esm_leases_taken_total" in expr for expr in with_data)
    unowned = prometheus.query("esm_shards_unowned")
    assert unowned and {sample["value"][1] for sample in unowned} == {"0"}
