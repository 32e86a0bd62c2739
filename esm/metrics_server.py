"""Serves /metrics (Prometheus text format), /healthz and the status page (`/` as HTML, `/status` as
JSON) on the configured port, on a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from esm.status_page import StatusSnapshots
from esm.status_page.html import render_body, render_page


class MetricsPortError(Exception):
    pass


class MetricsServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        healthy: Callable[[], bool],
        status: StatusSnapshots | None = None,
    ) -> None:
        """Without `status`, `/` and `/status` are not found."""
        self._status = status
        handler = _make_handler(registry, healthy, status)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as err:
            raise MetricsPortError(f"Metrics.Port: cannot listen on {host}:{port}: {err.strerror}") from err
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._status is not None:
            self._status.close()


def _make_handler(
    registry: CollectorRegistry, healthy: Callable[[], bool], status: StatusSnapshots | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if status is not None and path in ("/", "/status"):
                self._status_page(path, query, status)
            elif path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = healthy()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _status_page(self, path: str, query: str, snapshots: StatusSnapshots) -> None:
            snapshot = snapshots.current()
            if path == "/status":
                self._reply(200, orjson.dumps(snapshot, option=orjson.OPT_INDENT_2), "application/json")
            else:
                html = render_body(snapshot) if query == "part=body" else render_page(snapshot)
                self._reply(200, html.encode(), "text/html; charset=utf-8")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes are not worth a log line each

    return Handler
