"""`replay_command` end to end in-process: a real config file, a real file destination, and a
small gRPC worker on a loopback port (a thread-pool server, so it runs beside asyncio.run)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest

from esm._proto.esm.v1 import function_pb2, function_pb2_grpc
from esm.replay import replay_command

EVENT = {
    "eventSource": "SelfManagedKafka",
    "bootstrapServers": "127.0.0.1:9092",
    "records": {"orders-0": [{"topic": "orders", "partition": 0, "offset": 12, "value": "cG9pc29u"}]},
}
INFO = {"batchSize": 1, "recordsInfo": {"orders-0": {"firstRecordOffset": "12", "lastRecordOffset": "12"}}}
WITH_PAYLOAD = {
    "requestContext": {"condition": "RetryAttemptsExhausted"},
    "KafkaBatchInfo": INFO,
    "payload": EVENT,
}
WITHOUT_PAYLOAD = {"requestContext": {"condition": "RecordAgeExceeded"}, "KafkaBatchInfo": INFO}


class Worker(function_pb2_grpc.FunctionWorkerServicer):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[function_pb2.InvokeRequest] = []

    def Invoke(
        self, request: function_pb2.InvokeRequest, context: grpc.ServicerContext
    ) -> function_pb2.InvokeResponse:
        self.requests.append(request)
        return function_pb2.InvokeResponse(payload=self.answer)


@pytest.fixture
def start_worker() -> Iterator[Callable[[bytes], tuple[str, Worker]]]:
    servers: list[grpc.Server] = []

    def start(answer: bytes) -> tuple[str, Worker]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        worker = Worker(answer)
        function_pb2_grpc.add_FunctionWorkerServicer_to_server(worker, server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", worker

    yield start
    for server in servers:
        server.stop(0)


def write_config(
    tmp_path: Path, function: dict[str, Any], mappings: list[dict[str, Any]] | None = None
) -> str:
    path = tmp_path / "esm.json"
    config = {
        "Store": f"sqlite:///{tmp_path / 'state.db'}",
        "Functions": [function],
        "EventSourceMappings": mappings or [],
    }
    path.write_text(json.dumps(config))
    return str(path)


def write_destination(tmp_path: Path, *records: dict[str, Any]) -> Path:
    path = tmp_path / "failures.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def test_replays_the_payload_skips_a_metadata_only_record_and_leaves_the_destination_as_it_was(
    tmp_path: Path, start_worker: Callable[[bytes], tuple[str, Worker]], capsys: pytest.CaptureFixture[str]
) -> None:
    address, worker = start_worker(b"null")
    config = write_config(
        tmp_path,
        {"FunctionName": "fn", "Endpoints": [address], "Timeout": 7, "ReservedConcurrentExecutions": 1},
    )
    destination = write_destination(tmp_path, WITH_PAYLOAD, WITHOUT_PAYLOAD)
    before = destination.read_bytes()

    assert replay_command(config, f"file://{destination}", "fn") == 0

    out = capsys.readouterr().out.splitlines()
    assert (
        out[1]
        == "record 1: RetryAttemptsExhausted, Kafka orders-0 offset 12 (1 record): succeeded on attempt 1"
    )
    assert out[2].startswith(
        "record 2: RecordAgeExceeded, Kafka orders-0 offset 12 (1 record): skipped (no payload)"
    )
    assert out[-1] == "replayed 2: 1 succeeded, 0 failed, 1 skipped (no payload)"
    [request] = worker.requests
    assert orjson.loads(request.payload) == EVENT
    assert (request.function_name, request.timeout_ms) == ("fn", 7000)
    assert destination.read_bytes() == before


def test_a_partial_batch_response_fails_the_replay(
    tmp_path: Path, start_worker: Callable[[bytes], tuple[str, Worker]], capsys: pytest.CaptureFixture[str]
) -> None:
    answer = orjson.dumps(
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 12}}]}
    )
    address, worker = start_worker(answer)
    mapping = {
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": [address]}, [mapping])
    destination = write_destination(tmp_path, WITH_PAYLOAD)

    assert replay_command(config, f"file://{destination}", "fn") == 1

    out = capsys.readouterr().out
    assert "partially failed from orders-0 offset 12 on attempt 1" in out
    assert out.splitlines()[-1] == "replayed 1: 0 succeeded, 1 failed, 0 skipped (no payload)"
    assert len(worker.requests) == 1


def test_an_unknown_function_lists_the_defined_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": ["127.0.0.1:1"]})
    assert replay_command(config, f"file://{tmp_path / 'f.jsonl'}", "nope") == 1
    err = capsys.readouterr().err
    assert "'nope' is not a function" in err and "Functions defines: 'fn'" in err


def test_config_problems_are_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": [], "Timeout": 0})
    assert replay_command(config, f"file://{tmp_path / 'f.jsonl'}", "fn") == 1
    err = capsys.readouterr().err
    assert "Functions[0].Endpoints" in err and "Functions[0].Timeout" in err


def test_a_torn_line_is_named_and_skipped_and_the_replay_goes_on(
    tmp_path: Path, start_worker: Callable[[bytes], tuple[str, Worker]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A line torn by a full disk must not hide the records after it (issue 10, item 4)."""
    address, worker = start_worker(b"null")
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": [address]})
    destination = write_destination(tmp_path, WITH_PAYLOAD)
    with destination.open("ab") as out:
        out.write(b'{"requestContext": {"condition": "Retry\n' + orjson.dumps(WITH_PAYLOAD) + b"\n")

    assert replay_command(config, f"file://{destination}", "fn") == 1

    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith(
        f"record 2: unreadable and skipped: file {str(destination)!r} line 2 is not valid JSON ("
    )
    assert out[3].startswith("record 3: RetryAttemptsExhausted") and out[3].endswith("succeeded on attempt 1")
    assert out[-1] == "replayed 3: 2 succeeded, 0 failed, 0 skipped (no payload), 1 unreadable (skipped)"
    assert len(worker.requests) == 2


def test_an_object_that_is_no_failure_record_is_explained_as_such(
    tmp_path: Path, start_worker: Callable[[bytes], tuple[str, Worker]], capsys: pytest.CaptureFixture[str]
) -> None:
    address, worker = start_worker(b"null")
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": [address]})
    destination = write_destination(tmp_path, {"hello": "world"}, WITH_PAYLOAD)

    assert replay_command(config, f"file://{destination}", "fn") == 1

    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        "record 1: unknown condition, no batch info: unreadable and skipped: it is not a failure record "
        "(one has a requestContext and a KafkaBatchInfo, KinesisBatchInfo or DDBStreamBatchInfo)"
    )
    assert "IncludePayload" not in out[1]
    assert out[-1] == "replayed 2: 1 succeeded, 0 failed, 0 skipped (no payload), 1 unreadable (skipped)"
    assert len(worker.requests) == 1


def test_a_dry_run_lists_what_would_be_replayed_and_invokes_nothing(
    tmp_path: Path, start_worker: Callable[[bytes], tuple[str, Worker]], capsys: pytest.CaptureFixture[str]
) -> None:
    address, worker = start_worker(b"null")
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": [address]})
    destination = write_destination(tmp_path, WITH_PAYLOAD, WITHOUT_PAYLOAD, WITH_PAYLOAD)

    assert replay_command(config, f"file://{destination}", "fn", dry_run=True) == 0

    out = capsys.readouterr().out.splitlines()
    size = len(orjson.dumps(EVENT))
    assert out == [
        f"dry run: what would be replayed from file://{destination} into function 'fn'",
        "record 1: RetryAttemptsExhausted, Kafka orders-0 offset 12 (1 record): "
        f"would replay (an event of {size} bytes, 1 item)",
        out[2],
        "record 3: RetryAttemptsExhausted, Kafka orders-0 offset 12 (1 record): "
        f"would replay (an event of {size} bytes, 1 item)",
        "dry run: 2 of 3 would be replayed, 1 skipped (no payload); nothing was invoked",
    ]
    assert out[2].startswith("record 2: RecordAgeExceeded, Kafka orders-0 offset 12 (1 record): skipped")
    assert worker.requests == []


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("sqs://queue", "unsupported URI scheme 'sqs'"),
        ("kafka://failed", "cannot tell which Kafka cluster 'kafka://failed' is on"),
    ],
)
def test_a_destination_that_cannot_be_read_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], uri: str, message: str
) -> None:
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": ["127.0.0.1:1"]})
    assert replay_command(config, uri, "fn") == 2
    assert message in capsys.readouterr().err


def test_an_empty_destination_replays_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": ["127.0.0.1:1"]})
    assert replay_command(config, f"file://{write_destination(tmp_path)}", "fn") == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "replayed 0: 0 succeeded, 0 failed, 0 skipped (no payload)"
    )


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_destination_that_does_not_exist_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """`--from file:///missing` used to say "replayed 0" and exit 0 (issue 10, item 4)."""
    config = write_config(tmp_path, {"FunctionName": "fn", "Endpoints": ["127.0.0.1:1"]})
    missing = tmp_path / "typo.jsonl"
    assert replay_command(config, f"file://{missing}", "fn", dry_run=dry_run) == 2
    captured = capsys.readouterr()
    assert f"cannot read destination 'file://{missing}'" in captured.err
    assert "does not exist (no failure record was ever written there, or the path is wrong)" in captured.err
    assert "replayed 0" not in captured.out
