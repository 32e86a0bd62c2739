"""The lean JSON-protocol client: its signatures are botocore's, its errors are botocore's, and
it survives a kept-alive connection the server closed. Against kinesis-mock and DynamoDB Local,
the readers' tests (test_kinesis.py, test_dynamodb.py) run with both transports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import orjson
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from stream_services import KinesisMock, reader_client, wait_stream_active

from esm.control.sigv4 import SignedRequest, verify
from esm.sources.aws_json import (
    DYNAMODB_STREAMS,
    KINESIS,
    AwsJsonClient,
    LeanGetRecords,
    client_error,
    sign_post,
)

NOW = datetime(2026, 12, 7, 8, 30, 15, tzinfo=UTC)
KEYS = botocore.credentials.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SESSION_KEYS = botocore.credentials.Credentials("ASIAEXAMPLE", "secret", "session-token/+=")


@pytest.mark.parametrize("credentials", [KEYS, SESSION_KEYS], ids=["keys", "session"])
@pytest.mark.parametrize(
    ("protocol", "host"), [(KINESIS, "kinesis.eu-west-1.amazonaws.com"), (DYNAMODB_STREAMS, "127.0.0.1:8000")]
)
def test_the_signature_is_the_one_botocore_computes(
    credentials: Any, protocol: Any, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = orjson.dumps({"ShardIterator": "AAAA/+==", "Limit": 10000})
    ours = sign_post(protocol, "GetRecords", body, host, "/", "eu-west-1", credentials, NOW.timestamp())
    request = botocore.awsrequest.AWSRequest(
        method="POST",
        url=f"https://{host}/",
        data=body,
        headers={k: v for k, v in ours.headers.items() if k != "authorization"},
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW)  # botocore signs at "now"
    signer = botocore.auth.SigV4Auth(credentials, protocol.signing_name, "eu-west-1")
    signer.add_auth(request)
    assert ours.headers["authorization"] == request.headers["Authorization"]


def test_the_control_api_verifier_accepts_the_signature() -> None:
    body = b'{"Limit":1}'
    signed = sign_post(KINESIS, "GetRecords", body, "127.0.0.1:9109", "/", "us-east-1", KEYS, NOW.timestamp())
    request = SignedRequest(
        method="POST", raw_path="/", raw_query="", headers=list(signed.headers.items()), body=body
    )
    key_id = verify(
        request, lambda key: KEYS.secret_key if key == KEYS.access_key else None, "us-east-1", "kinesis", NOW
    )
    assert key_id == KEYS.access_key


@pytest.mark.parametrize(
    ("status", "body", "header", "code", "message"),
    [
        (
            400,
            b'{"__type":"com.amazonaws.kinesis.v20131202#ExpiredIteratorException","message":"old"}',
            None,
            "ExpiredIteratorException",
            "old",
        ),
        (
            400,
            b'{"__type":"ProvisionedThroughputExceededException","Message":"slow down"}',
            None,
            "ProvisionedThroughputExceededException",
            "slow down",
        ),
        (
            400,
            b"",
            "TrimmedDataAccessException:http://internal.amazon.com/",
            "TrimmedDataAccessException",
            "",
        ),
        (503, b"<html>Service Unavailable</html>", None, "503", "<html>Service Unavailable</html>"),
        (500, b'{"__type":"InternalFailure"}', None, "InternalFailure", ""),
    ],
)
def test_an_error_answer_is_botocores_client_error(
    status: int, body: bytes, header: str | None, code: str, message: str
) -> None:
    err = client_error(status, body, header, "GetRecords")
    assert isinstance(err, ClientError)
    assert err.response["Error"] == {"Code": code, "Message": message}
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err.operation_name == "GetRecords"


class _OneAnswerPerConnection(BaseHTTPRequestHandler):
    """Answers keep-alive (HTTP/1.1, no Connection: close) and then closes the socket anyway, as
    a load balancer dropping idle connections does."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []
    answer = orjson.dumps({"Records": [], "NextShardIterator": "next", "MillisBehindLatest": 0})

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        request = orjson.loads(self.rfile.read(length))
        type(self).seen.append({"target": self.headers["X-Amz-Target"], "limit": request["Limit"]})
        answer = type(self).answer
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def closing_server() -> Iterator[str]:
    _OneAnswerPerConnection.seen = []
    _OneAnswerPerConnection.answer = orjson.dumps(
        {"Records": [], "NextShardIterator": "next", "MillisBehindLatest": 0}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneAnswerPerConnection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_connection_the_server_closed_is_replaced_without_an_error(closing_server: str) -> None:
    client = AwsJsonClient(closing_server, "us-east-1", KINESIS, lambda: KEYS, 2.0, 2.0)
    for _ in range(3):
        assert client.call("GetRecords", {"ShardIterator": "it", "Limit": 5})["NextShardIterator"] == "next"
    assert _OneAnswerPerConnection.seen == [{"target": "Kinesis_20131202.GetRecords", "limit": 5}] * 3


def test_an_endpoint_that_does_not_answer_is_a_connection_error() -> None:
    from esm.netutil import free_port

    client = AwsJsonClient(f"http://127.0.0.1:{free_port()}", "us-east-1", KINESIS, lambda: KEYS, 2.0, 2.0)
    with pytest.raises(EndpointConnectionError):
        client.call("GetRecords", {"ShardIterator": "it"})


def test_no_credentials_is_botocores_error() -> None:
    client = AwsJsonClient("http://127.0.0.1:1", "us-east-1", KINESIS, lambda: None, 2.0, 2.0)
    with pytest.raises(NoCredentialsError):
        client.call("GetRecords", {"ShardIterator": "it"})


def test_kinesis_errors_come_back_with_their_codes(
    kinesis_mock: KinesisMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = reader_client(monkeypatch, kinesis_mock.endpoint, "kinesis", "lean")
    assert isinstance(client, LeanGetRecords)
    name = f"s-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=1)
    wait_stream_active(client, name)
    [shard] = client.list_shards(StreamName=name)["Shards"]
    iterator = client.get_shard_iterator(
        StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
    )
    iterator = iterator["ShardIterator"]
    with pytest.raises(ClientError) as caught:
        client.get_records(ShardIterator=iterator, Limit=0)  # Limit must be 1-10000
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"] == {
        "Code": "InvalidArgumentException",
        "Message": "Limit must be between 1 and 10000",
    }


def test_a_proxy_in_the_environment_keeps_boto3(
    kinesis_mock: KinesisMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = reader_client(monkeypatch, "http://kinesis.internal.example:4567", "kinesis", "lean")
    assert not isinstance(client, LeanGetRecords)


def test_a_string_with_a_lone_surrogate_is_read_as_boto3_reads_it(closing_server: str) -> None:
    """DynamoDB Local returns a string item that is not Unicode as an escaped lone surrogate,
    which orjson refuses; the answer is still read (the event builder replaces it later)."""
    _OneAnswerPerConnection.answer = b'{"Records":[{"dynamodb":{"Keys":{"id":{"S":"a\\ud800b"}}}}]}'
    client = AwsJsonClient(closing_server, "us-east-1", DYNAMODB_STREAMS, lambda: KEYS, 2.0, 2.0)
    answer = client.call("GetRecords", {"ShardIterator": "it", "Limit": 5})
    assert answer["Records"][0]["dynamodb"]["Keys"]["id"]["S"] == "a\ud800b"


# -- on the event loop (call_async): the same answers and errors, no thread ----------------------


async def test_on_the_loop_a_connection_the_server_closed_is_replaced(closing_server: str) -> None:
    client = AwsJsonClient(closing_server, "us-east-1", KINESIS, lambda: KEYS, 2.0, 2.0)
    for _ in range(3):
        answer = await client.call_async("GetRecords", {"ShardIterator": "it", "Limit": 5})
        assert answer["NextShardIterator"] == "next"
    assert _OneAnswerPerConnection.seen == [{"target": "Kinesis_20131202.GetRecords", "limit": 5}] * 3


async def test_on_the_loop_kinesis_errors_and_answers_are_boto3s(
    kinesis_mock: KinesisMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = reader_client(monkeypatch, kinesis_mock.endpoint, "kinesis", "lean")
    name = f"s-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=1)
    wait_stream_active(client, name)
    [shard] = client.list_shards(StreamName=name)["Shards"]
    iterator = client.get_shard_iterator(
        StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    with pytest.raises(ClientError) as caught:
        await client.get_records_async(ShardIterator=iterator, Limit=0)
    assert caught.value.response["Error"]["Code"] == "InvalidArgumentException"
    client.put_record(StreamName=name, Data=b"hello", PartitionKey="k")
    # The same kept-alive connection serves the next calls.
    answer = await client.get_records_async(ShardIterator=iterator, Limit=10)
    again = await client.get_records_async(ShardIterator=answer["NextShardIterator"], Limit=10)
    assert [record["Data"] for record in answer["Records"]] == ["aGVsbG8="]  # base64, as on the wire
    assert again["Records"] == []


async def test_on_the_loop_an_endpoint_that_does_not_answer_is_a_connection_error() -> None:
    from esm.netutil import free_port

    client = AwsJsonClient(f"http://127.0.0.1:{free_port()}", "us-east-1", KINESIS, lambda: KEYS, 2.0, 2.0)
    with pytest.raises(EndpointConnectionError):
        await client.call_async("GetRecords", {"ShardIterator": "it"})


ACCEPTED: list[socket.socket] = []  # the silent server's connections


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and reads, never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = ACCEPTED
    accepted.clear()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


async def test_on_the_loop_an_answer_that_does_not_come_is_a_read_timeout(silent_server: str) -> None:
    client = AwsJsonClient(silent_server, "us-east-1", KINESIS, lambda: KEYS, 2.0, 0.2)
    with pytest.raises(ReadTimeoutError):
        await client.call_async("GetRecords", {"ShardIterator": "it"})


async def test_a_call_cancelled_midway_leaves_no_connection_behind(silent_server: str) -> None:
    """A cancelled read (a shard lost or stopping) must not leave a connection whose answer is
    still to come for the next call to read."""
    client = AwsJsonClient(silent_server, "us-east-1", KINESIS, lambda: KEYS, 2.0, 5.0)
    call = asyncio.ensure_future(client.call_async("GetRecords", {"ShardIterator": "it"}))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert client._idle_connections() == []


async def test_calls_on_the_loop_wait_for_a_free_connection(silent_server: str) -> None:
    client = AwsJsonClient(silent_server, "us-east-1", KINESIS, lambda: KEYS, 2.0, 0.5, max_connections=1)
    calls = [
        asyncio.ensure_future(client.call_async("GetRecords", {"ShardIterator": "it"})) for _ in range(2)
    ]
    await asyncio.sleep(0.2)
    assert len(ACCEPTED) == 1  # the second call waits for the first one's slot
    for call in calls:
        with pytest.raises(ReadTimeoutError):
            await call
    assert len(ACCEPTED) == 2  # then has its own turn (the first connection was dropped)
