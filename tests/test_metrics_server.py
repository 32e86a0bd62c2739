import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from esm.metrics import Metrics
from esm.metrics_server import MetricsPortError, MetricsServer
from esm.status_page import StatusSnapshots


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_serves_metrics_and_health() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.records_polled.labels("m-1").inc(7)
    healthy = [True]
    server = MetricsServer("127.0.0.1", 0, registry, lambda: healthy[0])
    server.start()
    try:
        status, body = get(server.port, "/metrics")
        assert status == 200
        assert 'esm_records_polled_total{mapping="m-1"} 7.0' in body
        assert get(server.port, "/healthz") == (200, "ok\n")
        healthy[0] = False
        assert get(server.port, "/healthz")[0] == 503
        assert get(server.port, "/nope")[0] == 404
    finally:
        server.stop()


def test_every_metric_name_is_prefixed() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    names = [family.name for family in registry.collect()]
    assert names and all(name.startswith("esm_") for name in names)


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortError, match=f"Metrics.Port: cannot listen on 127.0.0.1:{port}"):
            MetricsServer("127.0.0.1", port, CollectorRegistry(), lambda: True)


def test_serves_the_status_page_and_its_json() -> None:
    async def gather(budget: float) -> dict[str, Any]:
        mapping = {
            "uuid": "m-1",
            "function": "fn",
            "state": "Enabled",
            "source": "Kafka topic t",
            "partitions": [],
        }
        return {"mappings": [mapping], "unreachable": [], "gather_seconds": 0.01}

    server = MetricsServer(
        "127.0.0.1", 0, CollectorRegistry(), lambda: True, StatusSnapshots(gather, lambda: True)
    )
    server.start()
    try:
        status, body = get(server.port, "/status")
        assert status == 200
        snapshot = json.loads(body)
        assert snapshot["mappings"][0]["uuid"] == "m-1" and snapshot["daemon"]["healthy"] is True
        status, page = get(server.port, "/")
        assert status == 200 and page.startswith("<!DOCTYPE html>") and "data-uuid='m-1'" in page
        status, part = get(server.port, "/?part=body")
        assert status == 200 and "data-uuid='m-1'" in part and "<html" not in part
    finally:
        server.stop()


def test_without_a_status_source_the_page_is_not_found() -> None:
    server = MetricsServer("127.0.0.1", 0, CollectorRegistry(), lambda: True)
    server.start()
    try:
        assert get(server.port, "/")[0] == 404 and get(server.port, "/status")[0] == 404
    finally:
        server.stop()
