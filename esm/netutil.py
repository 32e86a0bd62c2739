"""Small network helpers shared by the embedded services, tests and benchmarks."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on `host` a moment ago.

    The OS picks it (bind to port 0); the socket is closed before returning, so another process
    can take the port before the caller binds it: callers that start a server on it must be
    ready to retry with a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
