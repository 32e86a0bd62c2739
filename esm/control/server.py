"""The control API's HTTP(S) front: Lambda's REST paths, every request checked for an AWS
Signature Version 4 by one of the configured keys, answers and errors in Lambda's shapes.

HTTP runs on a thread pool (stdlib `ThreadingHTTPServer`, keep-alive for the SDKs' connection
pools); the operations run on an event loop of their own, on one more thread, with the daemon's
store opened there. A request is logged with its operation, status and access key id: never a
secret, a signature or a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import uuid
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from esm.config import EsmConfig
from esm.config.control_api import ControlApiConfig
from esm.control.errors import ApiError
from esm.control.routes import Route, route
from esm.control.service import ControlService, FileMappings
from esm.control.sigv4 import AuthFailure, SignedRequest, verify
from esm.stores import Store, open_store

log = logging.getLogger(__name__)

SERVICE = "lambda"
# Lambda's request payload limit for these operations is far below this; anything larger is refused
# unread.
MAX_BODY_BYTES = 6 * 1024 * 1024
OPERATION_TIMEOUT_SECONDS = 30.0
# A kept-alive connection that sends nothing for this long is closed (its thread freed).
IDLE_CONNECTION_SECONDS = 120.0
# Operations that answer 202 Accepted (botocore's model: they change state asynchronously).
_ACCEPTED = {"CreateEventSourceMapping", "UpdateEventSourceMapping", "DeleteEventSourceMapping"}


class ControlApiError(Exception):
    """The control API cannot start (a port in use, a key's secret missing, a bad certificate)."""


class ControlApiServer:
    def __init__(self, settings: ControlApiConfig, config: EsmConfig, file: FileMappings) -> None:
        try:
            self._secrets = {key.AccessKeyId: key.secret() for key in settings.AccessKeys}
        except KeyError as err:
            raise ControlApiError(str(err.args[0])) from None
        self._settings = settings
        self._config = config
        self._file = file
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="control-api-loop", daemon=True
        )
        self._store: Store | None = None
        self._service: ControlService | None = None
        try:
            self._http = ThreadingHTTPServer((settings.Host, settings.Port), _handler(self))
        except OSError as err:
            raise ControlApiError(
                f"ControlApi: cannot listen on {settings.Host}:{settings.Port}: {err.strerror}"
            ) from None
        self._http.daemon_threads = True
        if settings.CertFile is not None and settings.KeyFile is not None:
            # The handshake happens on the request's own thread (at its first read), so a client
            # that connects and says nothing holds up no one else.
            self._http.socket = _tls_context(settings.CertFile, settings.KeyFile).wrap_socket(
                self._http.socket, server_side=True, do_handshake_on_connect=False
            )
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="control-api-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self._settings.CertFile else "http"

    def start(self) -> None:
        self._loop_thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(OPERATION_TIMEOUT_SECONDS)
        self._http_thread.start()
        log.info(
            "control API (Lambda 2015-03-31, SigV4, region %s) on %s://%s:%d",
            self._settings.Region,
            self.scheme,
            self._settings.Host,
            self.port,
        )

    async def _open(self) -> None:
        self._store = open_store(self._config.Store)
        self._service = ControlService(
            self._config, self._file, self._store.mappings, self._store.status, self._settings.Region
        )

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._store is not None:
            with contextlib.suppress(FutureTimeout, TimeoutError):
                asyncio.run_coroutine_threadsafe(self._store.close(), self._loop).result(5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(5.0)

    # -- one request (on an HTTP thread) -------------------------------------------------------------

    def handle(self, request: SignedRequest) -> tuple[int, dict[str, Any]]:
        try:
            key_id = verify(request, self._secrets.get, self._settings.Region, SERVICE, datetime.now(UTC))
        except AuthFailure as failure:
            log.warning(
                "control API: %s %s refused: %s", request.method, request.raw_path, failure.error_type
            )
            raise ApiError(failure.error_type, failure.message) from None
        found = route(request.method, request.raw_path, request.raw_query)
        body = _json_body(request.body) if request.method in ("POST", "PUT") else {}
        status = 202 if found.operation in _ACCEPTED else 200
        answer = self._run(self._operation(found, body))
        log.info("control API: %s %s -> %d (key %s)", found.operation, found.resource or "", status, key_id)
        return status, answer

    def _operation(self, found: Route, body: dict[str, Any]) -> Coroutine[Any, Any, dict[str, Any]]:
        service = self._service
        assert service is not None
        resource, query = found.resource or "", found.query
        match found.operation:
            case "CreateEventSourceMapping":
                return service.create(body)
            case "GetEventSourceMapping":
                return service.get(resource)
            case "ListEventSourceMappings":
                return service.list(
                    query.get("FunctionName"),
                    query.get("EventSourceArn"),
                    query.get("Marker"),
                    query.get("MaxItems"),
                )
            case "UpdateEventSourceMapping":
                return service.update(resource, body)
            case "DeleteEventSourceMapping":
                return service.delete(resource)
            case "GetFunction":
                return service.get_function(resource)
            case _:
                return service.list_functions(query.get("Marker"), query.get("MaxItems"))

    def _run(self, work: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(OPERATION_TIMEOUT_SECONDS)
        except FutureTimeout:
            future.cancel()
            raise ApiError("ServiceException", "The operation did not finish in time") from None


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ApiError(
            "InvalidRequestContentException", f"Could not parse request body into json: {err}"
        ) from None
    if not isinstance(body, dict):
        raise ApiError("InvalidRequestContentException", "The request body must be a JSON object")
    return body


def _tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as err:
        raise ControlApiError(f"ControlApi: cannot load CertFile/KeyFile: {err}") from None
    return context


def _handler(server: ControlApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse connections
        timeout = IDLE_CONNECTION_SECONDS

        def _serve(self) -> None:
            request_id = str(uuid.uuid4())
            try:
                request = self._read()
                status, answer = server.handle(request)
            except ApiError as err:
                self._reply(err.status, err.body(), request_id, error_type=err.error_type)
                return
            except Exception:
                log.exception("control API: %s %s failed", self.command, self.path)
                failure = ApiError("ServiceException", "An internal error occurred; see the daemon's log")
                self._reply(failure.status, failure.body(), request_id, error_type=failure.error_type)
                return
            self._reply(status, answer, request_id)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def _read(self) -> SignedRequest:
            length_text = self.headers.get("Content-Length", "0")
            length = int(length_text) if length_text.isdigit() else -1
            if length < 0:
                raise ApiError("InvalidRequestContentException", "Content-Length must be a whole number")
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the body is not read
                raise ApiError(
                    "RequestTooLargeException",
                    f"The request is {length} bytes; the limit is {MAX_BODY_BYTES}",
                )
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            return SignedRequest(self.command, parts.path, parts.query, list(self.headers.items()), body)

        def _reply(
            self, status: int, body: dict[str, Any], request_id: str, error_type: str | None = None
        ) -> None:
            payload = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", request_id)
            if error_type is not None:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return  # requests are logged by ControlApiServer.handle, without their contents

    return Handler
