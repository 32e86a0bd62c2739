"""Mappings managed live through Lambda's own API on running daemons: boto3's `lambda` client and
the aws CLI against `esm run`, on a Kafka topic (the bundled broker) and a Kinesis stream
(kinesis-mock); two daemons on one Redis store both apply a change."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from esm_processes import REPO, EsmProcess
from stream_services import KinesisMock

from esm.control.sdk import with_esm_settings
from esm.embedded.topics import OutgoingRecord, committed_offsets, produce
from esm.netutil import free_port

from .harness import FAST_GROUP, Worker, complete_lines, esm_status, wait_until, write_config
from .stream_harness import create_kinesis_stream, delivered_records, emulator_env, put_records

KEY_ID, SECRET = "AKIAESMINTEGRATION01", "integration-secret-value"
AWS_CLI = REPO / ".services" / "awscli" / "bin" / "aws"


def control_config(
    tmp_path: Path, worker: Worker, store: str | None = None, name: str = "esm"
) -> tuple[Path, int]:
    port = free_port()
    path = write_config(
        tmp_path / f"{name}.json",
        [{"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 30}],
        [],
        store=store,
        ControlApi={
            "Port": port,
            "AccessKeys": [{"AccessKeyId": KEY_ID, "SecretAccessKeyEnv": "ESM_CONTROL_SECRET"}],
        },
        LeaseDurationSeconds=3,
        ShardDiscoveryIntervalSeconds=2,
    )
    return path, port


def start_daemon(config: Path, env: dict[str, str] | None = None) -> EsmProcess:
    engine = EsmProcess(["run", "-c", str(config)], env={"ESM_CONTROL_SECRET": SECRET, **(env or {})})
    engine.wait_for_line(r"control API .* on http://")
    return engine


def lambda_client(port: int, secret: str = SECRET, key_id: str = KEY_ID, region: str = "us-east-1") -> Any:
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )
    # The bundled broker needs a short session to join fast: esm's KafkaConsumerConfig, which is
    # not in botocore's model, rides in the body.
    return with_esm_settings(client, {"KafkaConsumerConfig": FAST_GROUP})


def recorded_batches(path: Path) -> list[list[str]]:
    """The values of each Kafka batch the recorder handler saw, in invocation order."""
    batches = []
    for line in complete_lines(path):
        event = json.loads(line)
        batches.append(
            [base64.b64decode(r["value"]).decode() for rs in event["records"].values() for r in rs]
        )
    return batches


def values(batches: list[list[str]]) -> list[str]:
    return [value for batch in batches for value in batch]


def state_of(client: Any, uuid_: str) -> str:
    return str(client.get_event_source_mapping(UUID=uuid_)["State"])


@contextmanager
def running(*processes: EsmProcess | Worker) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


def test_a_kafka_mapping_created_updated_disabled_enabled_and_deleted_through_boto3(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    produce(
        kafka_broker, topic, [OutgoingRecord(value=f"a{n}".encode(), partition=n % 2) for n in range(200)]
    )
    out = tmp_path / "events.jsonl"
    worker = Worker("tests.handlers.recorder:handler", env={"ESM_RECORDER_FILE": str(out)}).wait_serving()
    config, port = control_config(tmp_path, worker)
    engine = start_daemon(config)
    aws = lambda_client(port)
    group = f"g-{topic}"
    with running(engine, worker):
        created = aws.create_event_source_mapping(
            FunctionName="fn",
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka_broker]}},
            Topics=[topic],
            SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": group},
            StartingPosition="TRIM_HORIZON",
            BatchSize=50,
            MaximumBatchingWindowInSeconds=0,
        )
        mapping_id = created["UUID"]
        assert created["State"] == "Creating"
        wait_until(lambda: len(values(recorded_batches(out))) >= 200, message="the first 200 records")
        wait_until(lambda: state_of(aws, mapping_id) == "Enabled", message="Enabled")
        shown = esm_status(config)  # API mappings are shown like the config file's
        assert [(m["uuid"], m["state"], m["topic"]) for m in shown] == [(mapping_id, "Enabled", topic)]

        # BatchSize 50 -> 5: every batch of the records produced after the update holds at most 5.
        aws.update_event_source_mapping(UUID=mapping_id, BatchSize=5)
        wait_until(lambda: state_of(aws, mapping_id) == "Enabled", message="the update applied")
        produce(
            kafka_broker, topic, [OutgoingRecord(value=f"b{n}".encode(), partition=n % 2) for n in range(100)]
        )
        wait_until(
            lambda: sum(v.startswith("b") for v in values(recorded_batches(out))) >= 100, message="b records"
        )
        after = [batch for batch in recorded_batches(out) if any(v.startswith("b") for v in batch)]
        assert max(len(batch) for batch in after) <= 5
        assert max(len(batch) for batch in recorded_batches(out) if all(v.startswith("a") for v in batch)) > 5

        # Disabled: no invocations, the group's offsets stay.
        wait_until(
            lambda: sum(committed_offsets(kafka_broker, group, topic).values()) == 300,
            message="300 committed",
        )
        aws.update_event_source_mapping(UUID=mapping_id, Enabled=False)
        wait_until(lambda: state_of(aws, mapping_id) == "Disabled", message="Disabled")
        invoked = len(recorded_batches(out))
        produce(
            kafka_broker, topic, [OutgoingRecord(value=f"c{n}".encode(), partition=n % 2) for n in range(60)]
        )
        time.sleep(3)
        assert len(recorded_batches(out)) == invoked
        assert sum(committed_offsets(kafka_broker, group, topic).values()) == 300

        # Enabled again: it resumes where it stopped, nothing lost or skipped.
        aws.update_event_source_mapping(UUID=mapping_id, Enabled=True)
        wait_until(
            lambda: sum(committed_offsets(kafka_broker, group, topic).values()) == 360,
            message="360 committed",
        )
        delivered = values(recorded_batches(out))
        expected = (
            {f"a{n}" for n in range(200)} | {f"b{n}" for n in range(100)} | {f"c{n}" for n in range(60)}
        )
        assert set(delivered) == expected

        # The running daemon refuses what is not signed by its key, whatever the request.
        refusals = {
            "unsigned": _unsigned_status(port),
            "wrong secret": _refusal(lambda_client(port, secret="not-the-secret"), mapping_id),
            "unknown key": _refusal(lambda_client(port, key_id="AKIAUNKNOWNKEY000001"), mapping_id),
            "wrong region": _refusal(lambda_client(port, region="eu-west-1"), mapping_id),
        }
        assert refusals == {
            "unsigned": (403, "MissingAuthenticationTokenException"),
            "wrong secret": (403, "InvalidSignatureException"),
            "unknown key": (403, "UnrecognizedClientException"),
            "wrong region": (403, "InvalidSignatureException"),
        }
        assert state_of(aws, mapping_id) == "Enabled"  # nothing refused was applied

        # Deleted: stopped (partitions given up), then gone from the API.
        aws.delete_event_source_mapping(UUID=mapping_id)
        wait_until(lambda: _gone(aws, mapping_id), message="the mapping is deleted")
        engine.wait_for_line(rf"mapping {mapping_id}: stopped")
        assert "unhandled" not in engine.stderr.lower()


def _refusal(client: Any, mapping_id: str) -> tuple[int, str]:
    """What the API answers a disable from `client` (which should be refused)."""
    try:
        client.update_event_source_mapping(UUID=mapping_id, Enabled=False)
    except ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]
    return 200, "accepted"


def _unsigned_status(port: int) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/event-source-mappings", method="GET"
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as err:
        return err.code, str(err.headers["x-amzn-ErrorType"])
    return 200, "accepted"


def _gone(client: Any, uuid_: str) -> bool:
    try:
        client.get_event_source_mapping(UUID=uuid_)
    except ClientError as err:
        return bool(err.response["Error"]["Code"] == "ResourceNotFoundException")
    return False


def aws_cli(port: int, *args: str) -> dict[str, Any]:
    assert AWS_CLI.exists(), f"the aws CLI is not installed at {AWS_CLI}: run scripts/test.sh"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    done = subprocess.run(
        [str(AWS_CLI), "lambda", *args, "--endpoint-url", f"http://127.0.0.1:{port}", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_a_kinesis_mapping_through_the_aws_cli_on_two_daemons_sharing_a_redis_store(
    kinesis_mock: KinesisMock, tmp_path: Path
) -> None:
    stream = create_kinesis_stream(kinesis_mock, shard_count=2)
    out = tmp_path / "events.jsonl"
    worker = Worker(
        "tests.handlers.recorder:handler", concurrency=4, env={"ESM_RECORDER_FILE": str(out)}
    ).wait_serving()
    store = f"redis://127.0.0.1:6379/0?prefix=esmtest-{uuid.uuid4().hex[:10]}:"
    (config_a, port_a), (config_b, _) = (control_config(tmp_path, worker, store, name) for name in ("a", "b"))
    env = emulator_env(kinesis_mock)
    a, b = start_daemon(config_a, env), start_daemon(config_b, env)
    with running(a, b, worker):
        created = aws_cli(
            port_a,
            "create-event-source-mapping",
            "--function-name",
            "fn",
            "--event-source-arn",
            stream.arn,
            "--starting-position",
            "TRIM_HORIZON",
            "--batch-size",
            "100",
        )
        mapping_id = created["UUID"]
        put_records(stream, [(f"k{n}", f"r{n}".encode()) for n in range(40)])
        wait_until(lambda: len(_delivered(out)) >= 40, message="40 records through both daemons")
        for daemon in (a, b):  # each daemon runs the mapping: the shards are shared through the leases
            daemon.wait_for_line(rf"mapping {mapping_id}: Kinesis")

        updated = aws_cli(port_a, "update-event-source-mapping", "--uuid", mapping_id, "--batch-size", "3")
        assert updated["BatchSize"] == 3
        for daemon in (a, b):
            daemon.wait_for_line(rf"mapping {mapping_id}: new settings apply from the next batch")
        seen = len(complete_lines(out))
        put_records(stream, [(f"k{n}", f"r{n}".encode()) for n in range(40, 100)])
        wait_until(lambda: len(_delivered(out)) >= 100, message="60 more records")
        later = [r.invocation for r in delivered_records(out) if r.invocation >= seen]
        assert later and max(later.count(invocation) for invocation in set(later)) <= 3

        listed = aws_cli(port_a, "list-event-source-mappings", "--event-source-arn", stream.arn)
        assert [m["UUID"] for m in listed["EventSourceMappings"]] == [mapping_id]
        aws_cli(port_a, "delete-event-source-mapping", "--uuid", mapping_id)
        for daemon in (a, b):
            daemon.wait_for_line(rf"mapping {mapping_id}: stopped")
        assert _delivered(out) == {f"r{n}" for n in range(100)}


def _delivered(path: Path) -> set[str]:
    return {record.data.decode() for record in delivered_records(path)}


@pytest.fixture(autouse=True)
def _no_leftover_secret(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    captured = capfd.readouterr()
    assert SECRET not in captured.out and SECRET not in captured.err
