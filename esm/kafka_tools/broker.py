"""`esm broker`: the bundled Kafka-compatible broker (Tansu) in the foreground, for development.

It listens on a fixed address (clients are told that address in metadata, so it must be one they
can reach), keeps records in memory only, and stops cleanly on Ctrl-C or SIGTERM. Tansu's own
output goes to a log file, named when the broker fails.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from esm.worker.address import InvalidListenAddress, ListenAddress, parse_listen

DEFAULT_LISTEN = "127.0.0.1:9092"
_WATCH_INTERVAL_S = 0.5
_UNSPECIFIED_HOSTS = ("0.0.0.0", "[::]")


def listen_problem(address: ListenAddress) -> str | None:
    """Why the broker cannot listen there, naming the flag; None when it can."""
    if address.port == 0:
        return f"--listen {address}: give a port (clients are told this address; the usual one is 9092)"
    if address.host in _UNSPECIFIED_HOSTS:
        return (
            f"--listen {address}: clients are told this address and cannot connect to {address.host}; "
            f"give one they can reach, e.g. 127.0.0.1:{address.port}"
        )
    return None


def run_broker(listen: str) -> int:
    """The `esm broker` command: 0 after a clean stop, 1 when the broker cannot start or dies, 2 for
    a bad --listen."""
    try:
        address = parse_listen(listen)
    except InvalidListenAddress as exc:
        _say(str(exc))
        return 2
    problem = listen_problem(address)
    if problem is not None:
        _say(problem)
        return 2
    from esm.embedded.tansu import TansuBroker, TansuError, TansuPortInUse

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    fd, name = tempfile.mkstemp(prefix="esm-broker-", suffix=".log")
    os.close(fd)
    log_path = Path(name)
    broker = TansuBroker(host=address.host, port=address.port, log_path=log_path)
    try:
        bootstrap = broker.start()
    except TansuError as exc:
        if isinstance(exc, TansuPortInUse):
            log_path.unlink(missing_ok=True)  # nothing in it worth keeping: the line says it all
        _say(f"cannot start the broker on {address}: {exc}")
        return 1
    _say(
        f"Kafka-compatible broker (Tansu, bundled) listening on {bootstrap}; records are kept in memory "
        "only. Ctrl-C stops it"
    )
    try:
        while not stop.wait(_WATCH_INTERVAL_S):
            if not broker.is_running():
                _say(f"the broker exited by itself; its log: {log_path}")
                return 1
    finally:
        broker.stop()
    _say("stopped")
    log_path.unlink(missing_ok=True)
    return 0


def _say(text: str) -> None:
    print(f"esm broker: {text}", file=sys.stderr, flush=True)
