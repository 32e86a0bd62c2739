"""A lean client for AWS's JSON-protocol APIs, for the one call the stream readers repeat: GetRecords.

An idle shard is read four or five times a second, and most of such a call's cost is not the
network: botocore's request pipeline (parameter validation, event hooks, endpoint rules, its
signer, its response parser) takes about a millisecond of CPU per call, which across a hundred
idle shards is a fifth of a core. This client does what that call needs and nothing else: it
signs a JSON POST with Signature Version 4 and sends it over a kept-alive connection of the
calling thread (HTTP/1.1 by esm.sources.http1, not http.client, whose header parsing alone
costs more than the rest of the call), and parses the answer with orjson, leaving blobs
base64 and timestamps epoch seconds as they are on the wire (the event shapes take both).

It speaks boto3's language at its edges, so the readers need not know which client they have:
errors are raised as botocore's `ClientError` (with the service's error code and HTTP status) or
its connection errors, and the endpoint, region and credentials are the boto3 client's own (so
AWS_ENDPOINT_URL_KINESIS, profiles and instance roles work as with boto3). Everything else a
reader calls (GetShardIterator, ListShards, ...) goes to the boto3 client (`LeanGetRecords`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import orjson
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from esm.sigv4_signing import ALGORITHM, signature, string_to_sign
from esm.sources import http1


@dataclass(frozen=True)
class JsonProtocol:
    """How one service names its JSON API: `X-Amz-Target` prefix, content type, signing name."""

    target_prefix: str
    content_type: str
    signing_name: str


KINESIS = JsonProtocol("Kinesis_20131202", "application/x-amz-json-1.1", "kinesis")
DYNAMODB_STREAMS = JsonProtocol("DynamoDBStreams_20120810", "application/x-amz-json-1.0", "dynamodb")


class FrozenCredentials(Protocol):
    access_key: str
    secret_key: str
    token: str | None


# Returns the current credentials (botocore's refreshable credentials refresh themselves), or
# None when there are none.
CredentialSource = Callable[[], FrozenCredentials | None]


@dataclass(frozen=True)
class SignedPost:
    path: str
    headers: dict[str, str]
    body: bytes


def sign_post(
    protocol: JsonProtocol,
    action: str,
    body: bytes,
    host: str,
    path: str,
    region: str,
    credentials: FrozenCredentials,
    now: float,
) -> SignedPost:
    """The request for `action` with its Authorization header. Pure (the time comes in)."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    date = amz_date[:8]
    headers = {
        "content-type": protocol.content_type,
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": f"{protocol.target_prefix}.{action}",
    }
    if credentials.token:
        headers["x-amz-security-token"] = credentials.token
    names = sorted(headers)
    signed = ";".join(names)
    canonical = "\n".join(
        [
            "POST",
            path,
            "",
            "".join(f"{name}:{headers[name]}\n" for name in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{protocol.signing_name}/aws4_request"
    to_sign = string_to_sign(amz_date, scope, canonical)
    sig = signature(credentials.secret_key, date, region, protocol.signing_name, to_sign)
    headers["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"
    )
    return SignedPost(path, headers, body)


def client_error(status: int, body: bytes, error_type_header: str | None, action: str) -> ClientError:
    """botocore's ClientError for a JSON-protocol error answer: the code from the body's `__type`
    (`com.amazonaws.kinesis.v20131202#ExpiredIteratorException` -> `ExpiredIteratorException`)
    or the `x-amzn-ErrorType` header, the message from `message` / `Message`."""
    parsed: Any = None
    if body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
    fields = parsed if isinstance(parsed, dict) else {}
    code = str(fields.get("__type") or (error_type_header or "").split(":")[0])
    # Without a code, botocore names the error by its HTTP status.
    code = code.rsplit("#", 1)[-1] or str(status)
    message = fields.get("message") or fields.get("Message")
    if message is None:
        message = body[:200].decode("utf-8", "replace") if not fields else ""
    response: Any = {
        "Error": {"Code": code, "Message": str(message)},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, action)


class AwsJsonClient:
    """Calls one service's JSON API at `endpoint_url`. `call` is safe to share between threads
    (each keeps its own connection); `call_async` keeps a pool of connections per event loop,
    with at most `max_connections` calls (and connections) at a time."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        protocol: JsonProtocol,
        credentials: CredentialSource,
        connect_timeout: float,
        read_timeout: float,
        clock: Callable[[], float] = time.time,
        max_connections: int = 64,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"AwsJsonClient: endpoint must be an http(s) URL, got {endpoint_url!r}")
        self._endpoint_url = endpoint_url
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        default_port = parts.port is None or parts.port == (443 if self._https else 80)
        self._host_header = self._hostname if default_port else f"{self._hostname}:{self._port}"
        self._path = parts.path or "/"
        self._region = region
        self._protocol = protocol
        self._credentials = credentials
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._clock = clock
        self._local = threading.local()
        self._max_connections = max_connections
        self._async_pool: _LoopPool | None = None
        self._ssl_context: ssl.SSLContext | None = None
        if self._https:
            # botocore's own override of the trusted CAs, for endpoints behind a private CA.
            self._ssl_context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)

    def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        status, error_type, answer = self._exchange(self._signed(action, params))
        return _answer(status, error_type, answer, action)

    async def call_async(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """`call` on the running event loop, over a connection of its own pool: no thread hop.
        (Credentials that need refreshing refresh on the loop, once in a long while.)"""
        status, error_type, answer = await self._exchange_async(self._signed(action, params))
        return _answer(status, error_type, answer, action)

    def _signed(self, action: str, params: Mapping[str, Any]) -> SignedPost:
        credentials = self._credentials()
        if credentials is None:
            raise NoCredentialsError()
        body = orjson.dumps(params)
        return sign_post(
            self._protocol,
            action,
            body,
            self._host_header,
            self._path,
            self._region,
            credentials,
            self._clock(),
        )

    async def _exchange_async(self, request: SignedPost) -> tuple[int, str | None, bytes]:
        """`_exchange` on the event loop: the same errors, the same one retry; at most
        `max_connections` calls at a time (each holds a connection)."""
        payload = http1.request_bytes("POST", request.path, request.headers, request.body)
        pool = self._loop_pool()
        async with pool.slots:
            return await self._exchange_on(pool.idle, payload)

    async def _exchange_on(
        self, idle: list[_AnswerProtocol], payload: bytes
    ) -> tuple[int, str | None, bytes]:
        for attempt in (1, 2):
            # A kept-alive connection on the first attempt, a new one on the second.
            connection = _take_open(idle) if attempt == 1 else None
            reused = connection is not None
            try:
                if connection is None:
                    connection = await self._open_async()
            except TimeoutError as err:
                raise ConnectTimeoutError(endpoint_url=self._endpoint_url, error=err) from err
            except OSError as err:
                raise EndpointConnectionError(endpoint_url=self._endpoint_url, error=err) from err
            try:
                async with asyncio.timeout(self._read_timeout):
                    response = await connection.exchange(payload)
            except TimeoutError as err:
                connection.abort()
                raise ReadTimeoutError(endpoint_url=self._endpoint_url, error=err) from err
            except (OSError, http1.ProtocolError) as err:
                connection.abort()
                if reused and attempt == 1:
                    continue
                raise EndpointConnectionError(endpoint_url=self._endpoint_url, error=err) from err
            except BaseException:
                connection.abort()  # cancelled mid-answer: the connection's state is unknown
                raise
            if response.will_close or connection.closed:
                connection.abort()
            else:
                idle.append(connection)
            return response.status, response.headers.get("x-amzn-errortype"), response.body
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _loop_pool(self) -> _LoopPool:
        """The running loop's connections (a client used from a new loop starts afresh)."""
        loop = asyncio.get_running_loop()
        if self._async_pool is None or self._async_pool.loop is not loop:
            self._async_pool = _LoopPool(loop, [], asyncio.Semaphore(self._max_connections))
        return self._async_pool

    def _idle_connections(self) -> list[_AnswerProtocol]:
        return self._loop_pool().idle

    async def _open_async(self) -> _AnswerProtocol:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._connect_timeout):
            _, protocol = await loop.create_connection(
                _AnswerProtocol,
                self._hostname,
                self._port,
                ssl=self._ssl_context,
                server_hostname=self._hostname if self._ssl_context is not None else None,
            )
        return protocol

    def _exchange(self, request: SignedPost) -> tuple[int, str | None, bytes]:
        """Sends and reads one answer. A kept-alive connection the server has closed meanwhile
        fails on first use: that case is retried once on a new connection."""
        payload = http1.request_bytes("POST", request.path, request.headers, request.body)
        for attempt in (1, 2):
            reused = getattr(self._local, "connection", None) is not None
            try:
                connection = self._connection()
            except TimeoutError as err:
                raise ConnectTimeoutError(endpoint_url=self._endpoint_url, error=err) from err
            except OSError as err:
                raise EndpointConnectionError(endpoint_url=self._endpoint_url, error=err) from err
            try:
                response = http1.exchange(connection, payload)
            except TimeoutError as err:
                self._drop_connection()
                raise ReadTimeoutError(endpoint_url=self._endpoint_url, error=err) from err
            except (OSError, http1.ProtocolError) as err:
                self._drop_connection()
                if reused and attempt == 1:
                    continue
                raise EndpointConnectionError(endpoint_url=self._endpoint_url, error=err) from err
            if response.will_close:
                self._drop_connection()
            return response.status, response.headers.get("x-amzn-errortype"), response.body
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _connection(self) -> socket.socket:
        connection: socket.socket | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        connection = socket.create_connection((self._hostname, self._port), timeout=self._connect_timeout)
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                connection = self._ssl_context.wrap_socket(connection, server_hostname=self._hostname)
            connection.settimeout(self._read_timeout)
        except BaseException:
            connection.close()
            raise
        self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()


def _answer(status: int, error_type: str | None, answer: bytes, action: str) -> dict[str, Any]:
    """The parsed answer of a 200, botocore's ClientError for anything else."""
    if status != 200:
        raise client_error(status, answer, error_type, action)
    parsed = _parsed(answer) if answer else {}
    if not isinstance(parsed, dict):
        raise client_error(status, answer, "SerializationException", action)
    return parsed


@dataclass(frozen=True)
class _LoopPool:
    """`call_async`'s kept-alive connections on one event loop, and the slots that bound them."""

    loop: asyncio.AbstractEventLoop
    idle: list[_AnswerProtocol]
    slots: asyncio.Semaphore


def _take_open(idle: list[_AnswerProtocol]) -> _AnswerProtocol | None:
    """The last idle connection still open (closed ones are dropped), or None."""
    while idle:
        connection = idle.pop()
        if not connection.closed:
            return connection
    return None


class _AnswerProtocol(asyncio.Protocol):
    """One kept-alive connection on the event loop: what arrives goes to an http1 parser, and
    the complete answer to the request waiting for it."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser: http1.ResponseParser | None = None
        self._answer: asyncio.Future[http1.Response] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    async def exchange(self, payload: bytes) -> http1.Response:
        if self.closed or self._transport is None:
            raise http1.ConnectionClosed(started=False)
        self._parser = http1.ResponseParser()
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(payload)
        try:
            return await self._answer
        finally:
            self._parser = None
            self._answer = None

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._answer is None or self._answer.done():
            self.abort()  # bytes nobody asked for: the connection cannot be trusted
            return
        try:
            if self._parser.feed(data):
                self._answer.set_result(self._parser.response)  # type: ignore[arg-type]
        except http1.ProtocolError as err:
            self._answer.set_exception(err)
            self.abort()

    def eof_received(self) -> bool:
        self._end(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc)

    def _end(self, exc: Exception | None) -> None:
        self.closed = True
        parser, answer = self._parser, self._answer
        if parser is None or answer is None or answer.done():
            return
        if parser.closed():
            answer.set_result(parser.response)  # type: ignore[arg-type]
        elif exc is not None:
            answer.set_exception(exc)
        else:
            answer.set_exception(http1.ConnectionClosed(parser.started))

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


def _parsed(answer: bytes) -> Any:
    try:
        return orjson.loads(answer)
    except orjson.JSONDecodeError:
        # orjson refuses an escaped lone surrogate ("\ud800"), which DynamoDB Streams can return
        # for a string item that is not Unicode; the standard parser keeps it, and the event's
        # builder replaces it with U+FFFD, as with boto3.
        return json.loads(answer)


def proxied(endpoint_url: str) -> bool:
    """Whether the standard proxy variables (HTTPS_PROXY, NO_PROXY, ...) route `endpoint_url`
    through a proxy, which this client does not speak (boto3 does)."""
    parts = urlsplit(endpoint_url)
    return parts.scheme in getproxies() and not proxy_bypass(parts.hostname or "")


class LeanGetRecords:
    """A boto3 stream client ("kinesis" or "dynamodbstreams") whose GetRecords goes over
    `AwsJsonClient`; every other call is the boto3 client's."""

    def __init__(self, boto_client: Any, json_client: AwsJsonClient) -> None:
        self._boto = boto_client
        self._json = json_client

    def get_records(self, **params: Any) -> dict[str, Any]:
        return self._json.call("GetRecords", params)

    async def get_records_async(self, **params: Any) -> dict[str, Any]:
        """GetRecords on the running event loop (esm.sources.kinesis / dynamodb read with it)."""
        return await self._json.call_async("GetRecords", params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._boto, name)
