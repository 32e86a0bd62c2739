"""Parsing --listen HOST:PORT."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidListenAddress(ValueError):
    """--listen is not HOST:PORT."""


@dataclass(frozen=True)
class ListenAddress:
    host: str  # IPv6 literals keep their brackets: "[::1]"
    port: int

    def with_port(self, port: int) -> ListenAddress:
        return ListenAddress(self.host, port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`127.0.0.1:50051`, `0.0.0.0:50051`, `[::1]:50051`; port 0 lets the OS pick one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidListenAddress(f"--listen {text!r} is not HOST:PORT (e.g. 127.0.0.1:50051)")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise InvalidListenAddress(f"--listen {text!r}: write an IPv6 host in brackets, e.g. [::1]:50051")
    return ListenAddress(host, int(port_text))
