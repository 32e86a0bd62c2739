"""`esm broker`, `esm topic create` and `esm produce` as a user runs them: real processes, the
bundled broker, a real Kafka client reading back what was sent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from esm_processes import REPO, EsmProcess

from esm.embedded import read_highwaters
from esm.kafka_tools.broker import run_broker
from esm.netutil import free_port

pytestmark = pytest.mark.integration


def esm(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esm", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def started(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "esm", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def start_broker(address: str) -> EsmProcess:
    broker = EsmProcess(["broker", "--listen", address])
    broker.wait_for_line(r"esm broker: .* listening on")
    return broker


def test_a_topic_is_created_and_records_sent_with_esm_alone() -> None:
    address = f"127.0.0.1:{free_port()}"
    broker = start_broker(address)
    try:
        assert broker.stderr == (
            f"esm broker: Kafka-compatible broker (Tansu, bundled) listening on {address}; "
            "records are kept in memory only. Ctrl-C stops it"
        )
        created = esm("topic", "create", "orders", "--partitions", "2", "--bootstrap-servers", address)
        assert created.returncode == 0, created.stderr
        assert created.stderr == f"esm topic: created topic 'orders' with 2 partitions on {address}\n"

        again = esm("topic", "create", "orders", "--partitions", "2", "--bootstrap-servers", address)
        assert again.returncode == 1
        assert again.stderr == f"esm topic: topic 'orders' already exists on {address}\n"

        lines = '{"orderId": "o-1"}\n\n{"orderId": "o-2"}\n{"orderId": "o-3"}\n'
        sent = esm("produce", "orders", "--bootstrap-servers", address, "--key", "k", stdin=lines)
        assert sent.returncode == 0, sent.stderr
        assert sent.stderr == f"esm produce: sent 3 records to topic 'orders' on {address}\n"
        # One key: every record on one partition; the blank line sent nothing.
        assert sorted(read_highwaters(address, "orders", [0, 1]).values()) == [0, 3]
    finally:
        code = broker.stop(timeout=15)
    assert code == 0
    assert broker.stderr.splitlines()[-1] == "esm broker: stopped"


def test_ctrl_c_stops_the_broker_cleanly() -> None:
    broker = start_broker(f"127.0.0.1:{free_port()}")
    broker.process.send_signal(signal.SIGINT)
    assert broker.wait(timeout=15) == 0
    assert broker.stderr.splitlines()[-1] == "esm broker: stopped"


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_a_broker_that_dies_is_said_with_its_log() -> None:
    broker = start_broker(f"127.0.0.1:{free_port()}")
    (tansu,) = children_of(broker.process.pid)
    os.kill(tansu, signal.SIGKILL)
    assert broker.wait(timeout=15) == 1
    last = broker.stderr.splitlines()[-1]
    assert last.startswith("esm broker: the broker exited by itself; its log: ")
    log = Path(last.rpartition(" ")[2])
    assert "ready in" in log.read_text()
    log.unlink()


def test_a_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = esm("broker", "--listen", address)
    assert done.returncode == 1
    assert done.stderr == (
        f"esm broker: cannot start the broker on {address}: {address} is already in use (another broker, "
        "or another program, listens there): stop it or choose another port\n"
    )


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("127.0.0.1:0", "--listen 127.0.0.1:0: give a port"),
        ("0.0.0.0:9092", "--listen 0.0.0.0:9092: clients are told this address and cannot connect"),
        ("9092", "--listen '9092' is not HOST:PORT"),
    ],
)
def test_an_address_clients_cannot_use_is_refused(
    listen: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_broker(listen) == 2  # refused before anything starts: no process needed
    assert capsys.readouterr().err.startswith(f"esm broker: {problem}")


def test_no_broker_is_said_in_one_line_within_seconds() -> None:
    closed = f"127.0.0.1:{free_port()}"
    # Both at once: each waits 5 s for a broker.
    create = started("topic", "create", "orders", "--bootstrap-servers", closed)
    send = started("produce", "orders", "--bootstrap-servers", closed)
    _, created = create.communicate(timeout=60)
    _, sent = send.communicate("x\n", timeout=60)
    assert create.returncode == send.returncode == 1
    reason = "no broker answered within 5 s (is `esm broker` or Kafka running there?)"
    assert created.splitlines()[-1] == f"esm topic: cannot create topic 'orders' on {closed}: {reason}"
    assert sent.splitlines()[-1] == f"esm produce: cannot send to topic 'orders' on {closed}: {reason}"
