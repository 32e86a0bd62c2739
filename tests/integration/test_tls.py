"""TLS and mutual TLS between the daemon and its workers, with real certificates (openssl) and
the daemon's own invoker: a worker that requires client certificates refuses a caller without a
valid one; a daemon with `Tls` delivers through it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tls_certs import CertificateAuthority, Issued, make_ca

from esm.config import FunctionConfig
from esm.dispatch.endpoints import EndpointPool
from esm.dispatch.invoker import FunctionIdentity, FunctionInvoker
from esm.dispatch.limiter import UnlimitedLimiter
from esm.dispatch.outcomes import OutcomeKind
from esm.dispatch.tls import channel_credentials
from esm.embedded.topics import OutgoingRecord, produce
from esm.metrics import Metrics

from .harness import Worker, daemon, mapping, recorded, wait_committed, write_config

Certs = tuple[CertificateAuthority, Issued, Issued, Issued]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """The CA, the worker's and the daemon's certificates, and a daemon certificate of another CA."""
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(directory / "ca")
    rogue = make_ca(directory / "rogue", "rogue-ca")
    return ca, ca.issue("worker"), ca.issue("daemon"), rogue.issue("daemon")


@pytest.fixture
def mtls_worker(certs: Certs, tmp_path: Path) -> Iterator[Worker]:
    ca, server, _, _ = certs
    worker = Worker(
        "tests.handlers.recorder:handler",
        env={"ESM_RECORDER_FILE": str(tmp_path / "events.jsonl")},
        extra_args=(
            "--tls-cert",
            str(server.cert),
            "--tls-key",
            str(server.key),
            "--tls-client-ca",
            str(ca.cert),
        ),
    )
    worker.wait_for_line(r"esm worker: serving .* over TLS \(client certificates required\)")
    yield worker
    worker.stop()


def function(worker: Worker, **tls: str) -> FunctionConfig:
    return FunctionConfig.model_validate(
        {"FunctionName": "fn", "Endpoints": [worker.address], "Timeout": 5, **({"Tls": tls} if tls else {})}
    )


async def invoke_once(config: FunctionConfig) -> OutcomeKind:
    """One invocation through the daemon's own invoker, with the channel the daemon would make."""
    credentials = channel_credentials(config, "Functions[0].Tls")
    pool = EndpointPool(config.Endpoints, time.monotonic, credentials)
    invoker = FunctionInvoker(
        FunctionIdentity("fn", 5.0), pool, UnlimitedLimiter(), Metrics(CollectorRegistry())
    )
    try:
        return (await invoker.invoke(b'{"records":{}}')).kind
    finally:
        await pool.close()


async def test_a_worker_requiring_client_certificates_refuses_a_caller_without_a_valid_one(
    mtls_worker: Worker, certs: Certs
) -> None:
    ca, _, client, rogue = certs
    assert await invoke_once(function(mtls_worker)) is OutcomeKind.UNREACHABLE  # plain gRPC
    assert await invoke_once(function(mtls_worker, CaFile=str(ca.cert))) is OutcomeKind.UNREACHABLE
    signed_by_other_ca = function(
        mtls_worker, CaFile=str(ca.cert), CertFile=str(rogue.cert), KeyFile=str(rogue.key)
    )
    assert await invoke_once(signed_by_other_ca) is OutcomeKind.UNREACHABLE
    # A daemon that does not trust the worker's CA refuses the worker just the same.
    untrusting = function(mtls_worker, CertFile=str(client.cert), KeyFile=str(client.key))
    assert await invoke_once(untrusting) is OutcomeKind.UNREACHABLE
    valid = function(mtls_worker, CaFile=str(ca.cert), CertFile=str(client.cert), KeyFile=str(client.key))
    assert await invoke_once(valid) is OutcomeKind.SUCCESS


def test_a_daemon_with_tls_delivers_through_a_mutual_tls_worker(
    kafka_broker: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    mtls_worker: Worker,
    certs: Certs,
) -> None:
    ca, _, client, _ = certs
    topic = new_topic(partitions=1)
    produce(kafka_broker, topic, [OutgoingRecord(value=f"r{i}".encode(), partition=0) for i in range(5)])
    tls = {"CaFile": str(ca.cert), "CertFile": str(client.cert), "KeyFile": str(client.key)}
    config = write_config(
        tmp_path / "esm.json",
        [{"FunctionName": "fn", "Endpoints": [mtls_worker.address], "Timeout": 5, "Tls": tls}],
        [mapping(kafka_broker, topic, f"g-{topic}")],
    )
    engine = daemon(config)
    try:
        wait_committed(kafka_broker, f"g-{topic}", topic, 5)
    finally:
        engine.stop()
    assert sorted(d.value for d in recorded(tmp_path / "events.jsonl")) == [
        f"r{i}".encode() for i in range(5)
    ]


def test_an_unreadable_tls_file_is_one_clear_line(tmp_path: Path, certs: Certs) -> None:
    ca, _, client, _ = certs
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello\n")
    config = write_config(
        tmp_path / "esm.json",
        [
            {
                "FunctionName": "fn",
                "Endpoints": ["127.0.0.1:1"],
                "Tls": {"CaFile": str(ca.cert), "CertFile": str(client.cert), "KeyFile": str(not_a_key)},
            }
        ],
        [],
    )
    engine = daemon(config)
    assert engine.wait(timeout=30) == 1
    assert f"Functions[0].Tls.KeyFile '{not_a_key}': expected a PEM private key, found none" in engine.stderr
