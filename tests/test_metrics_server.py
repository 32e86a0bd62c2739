import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from esm.metrics import Metrics
from esm.metrics_server import MetricsPortError, MetricsServer


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
